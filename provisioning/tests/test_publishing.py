"""The build pipeline publishes kernels and points branch links with API tokens; every refusal
leaves the store and the database as they were."""

from __future__ import annotations

import io
import os
import shutil
import subprocess

import pytest
from django.core.management import call_command

from provisioning.models import ApiToken, BranchLink, Kernel, LinkChange, Network

pytestmark = pytest.mark.django_db

BUILD = "zero-os-development-generic-0123456789.efi"
LINK = "zero-os-development-generic.efi"


@pytest.fixture
def publisher():
    return ApiToken.issue("zos-ci", ["publish"])[1]


BOUNDARY = "zosboot-test-boundary"


def multipart(field: str, name: str, content: bytes) -> bytes:
    """A form as curl -F sends it, the file name exactly as given (the test client would
    strip a path from it)."""
    return (
        (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{field}"; filename="{name}"\r\n'
            f"Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + content
        + f"\r\n--{BOUNDARY}--\r\n".encode()
    )


def publish(client, token: str | None, name: str = BUILD, content: bytes = b"build one",
            field: str = "kernel"):  # fmt: skip
    if token is not None:
        client.cookies["token"] = token
    return client.post(
        "/api/kernel",
        data=multipart(field, name, content),
        content_type=f"multipart/form-data; boundary={BOUNDARY}",
    )


def store_files(settings) -> list[str]:
    return sorted(p.name for p in settings.ZOSBOOT_KERNELS_DIR.rglob("*") if p.is_file())


# --- tokens --------------------------------------------------------------------------------


def test_create_api_token_prints_the_token_alone_on_its_last_line_and_keeps_a_hash():
    out, err = io.StringIO(), io.StringIO()
    call_command("create_api_token", "zos-ci", "--scope", "publish", "--scope", "nodes",
                 stdout=out, stderr=err)  # fmt: skip
    secret = out.getvalue().strip().splitlines()[-1]
    token = ApiToken.objects.get(name="zos-ci")
    assert token.scope_list == ["publish", "nodes"]
    # zbt_<prefix>_<secret>; the secret itself may hold "_".
    assert secret.startswith("zbt_") and secret.split("_", 2)[2] not in token.digest
    assert ApiToken.authenticate(secret) == token
    assert token.prefix in secret and len(token.digest) == 64


def test_a_wrong_or_revoked_token_authenticates_nobody(publisher):
    token = ApiToken.objects.get()
    assert ApiToken.authenticate(publisher[:-2] + "xx") is None
    assert ApiToken.authenticate("not a token") is None
    assert ApiToken.authenticate(publisher).last_used_at is not None
    token.revoke()
    assert ApiToken.authenticate(publisher) is None


def test_a_token_without_a_scope_or_with_an_unknown_one_is_refused():
    with pytest.raises(ValueError, match="unknown scope"):
        ApiToken.issue("x", ["everything"])
    with pytest.raises(ValueError, match="needs a scope"):
        ApiToken.issue("x", [])


# --- POST /api/kernel ----------------------------------------------------------------------


def test_publishing_streams_the_kernel_into_the_store_and_registers_it(client, publisher, settings):
    response = publish(client, publisher)
    assert response.status_code == 201, response.content
    assert response.content.decode().startswith(f"published {BUILD} (9 bytes, sha256 ")
    kernel = Kernel.objects.get(name=BUILD)
    assert (settings.ZOSBOOT_KERNELS_DIR / BUILD).read_bytes() == b"build one"
    assert kernel.notes == "published by API token zos-ci"
    assert client.get(f"/kernel/{BUILD}").status_code == 200
    assert store_files(settings) == [BUILD]  # nothing left in the incoming directory


def test_publishing_the_same_bytes_again_is_a_harmless_repeat(client, publisher):
    publish(client, publisher)
    response = publish(client, publisher)
    assert response.status_code == 200
    assert b"already published with these bytes" in response.content
    assert Kernel.objects.count() == 1


def test_other_bytes_under_a_published_name_are_a_conflict_that_changes_nothing(
    client, publisher, settings
):
    publish(client, publisher)
    response = publish(client, publisher, content=b"build two, different")
    assert response.status_code == 409
    assert (settings.ZOSBOOT_KERNELS_DIR / BUILD).read_bytes() == b"build one"
    assert store_files(settings) == [BUILD]


@pytest.mark.parametrize(
    ("name", "status"),
    [("../../etc/passwd.efi", 400), ("sub/dir.efi", 400), ("bad name.efi", 400),
     ("-leading.efi", 400), ("C:\\boot\\x.efi", 400)],
)  # fmt: skip
def test_names_outside_the_alphabet_or_with_a_path_are_refused(
    client, publisher, settings, name, status
):
    response = publish(client, publisher, name=name)
    assert response.status_code == status, response.content
    assert not Kernel.objects.exists() and store_files(settings) == []


@pytest.mark.parametrize(
    ("token", "status"), [(None, 401), ("zbt_0123456789ab_" + "x" * 48, 401), ("junk", 401)]
)
def test_no_or_a_wrong_token_is_refused_with_nothing_stored(client, settings, token, status):
    response = publish(client, token)
    assert response.status_code == status
    assert b"token" in response.content
    assert not Kernel.objects.exists() and store_files(settings) == []


def test_a_token_without_the_publish_scope_is_forbidden(client, settings):
    _, secret = ApiToken.issue("ops", ["networks"])
    response = publish(client, secret)
    assert response.status_code == 403
    assert b"does not have the publish scope" in response.content
    assert not Kernel.objects.exists() and store_files(settings) == []


def test_an_upload_over_the_size_limit_is_413_with_nothing_stored(client, publisher, settings):
    settings.ZOSBOOT_MAX_KERNEL_BYTES = 1000
    response = publish(client, publisher, content=os.urandom(5000))
    assert response.status_code == 413
    assert not Kernel.objects.exists() and store_files(settings) == []


def test_a_post_without_the_kernel_field_is_400(client, publisher):
    response = publish(client, publisher, field="other")
    assert response.status_code == 400
    assert b"no file in the multipart field kernel" in response.content


# --- GET /api/symlink ----------------------------------------------------------------------


def test_a_branch_link_is_made_on_first_use_served_and_audited(client, publisher):
    publish(client, publisher)
    response = client.get(f"/api/symlink/{LINK}/{BUILD}")
    assert (
        response.status_code == 200
        and response.content.decode() == f"{LINK} -> {BUILD} (was new)\n"
    )
    link = BranchLink.objects.get(name=LINK)
    assert link.kernel.name == BUILD
    change = LinkChange.objects.get(link=link)
    assert (change.previous_name, change.new_name, change.changed_via) == (
        "",
        BUILD,
        "API token zos-ci",
    )
    served = client.get(f"/kernel/{LINK}")
    assert b"".join(served.streaming_content) == b"build one"
    assert served["X-Zosboot-Kernel"] == BUILD
    assert served["Content-Disposition"] == f'attachment; filename="{LINK}"'


def test_moving_a_link_and_rolling_it_back(client, publisher, prod):
    publish(client, publisher)
    newer = BUILD.replace("0123456789", "abcdef0123")
    publish(client, publisher, name=newer, content=b"build two")
    client.get(f"/api/symlink/{LINK}/{BUILD}")
    response = client.get(f"/api/symlink/{LINK}/{newer}")
    assert response.content.decode() == f"{LINK} -> {newer} (was {BUILD})\n"
    script = client.get(f"/ipxe/prod/1/x/{LINK}").content.decode()
    assert f"kernel={newer}" in script  # what it boots today
    assert Kernel.objects.get(name=newer).content_path in script
    # An image made from that URL chains it again at every boot: it stays on the link.
    image = client.get(f"/usb/prod/1/x/{LINK}")
    assert f"/ipxe/prod/1/x/{LINK} ||".encode() in b"".join(image.streaming_content)
    BranchLink.objects.get(name=LINK).rollback()
    assert f"kernel={BUILD}" in client.get(f"/ipxe/prod/1/x/{LINK}").content.decode()


def test_pointing_at_a_kernel_not_published_is_404_and_a_kernel_name_is_not_a_link(
    client, publisher
):
    client.cookies["token"] = publisher
    assert client.get(f"/api/symlink/{LINK}/missing.efi").status_code == 404
    publish(client, publisher)
    response = client.get(f"/api/symlink/{BUILD}/{BUILD}")
    assert response.status_code == 409 and not BranchLink.objects.exists()
    client.get(f"/api/symlink/{LINK}/{BUILD}")
    assert publish(client, publisher, name=LINK).status_code == 400  # a link's name


def test_pointing_a_link_needs_the_publish_scope(client):
    client.cookies["token"] = ApiToken.issue("nodes-only", ["nodes"])[1]
    assert client.get(f"/api/symlink/{LINK}/{BUILD}").status_code == 403


def test_a_network_following_a_link_boots_each_new_build(client, publisher):
    publish(client, publisher)
    client.get(f"/api/symlink/{LINK}/{BUILD}")
    dev, _ = Network.objects.get_or_create(slug="dev", defaults={"name": "Devnet"})
    dev.follow_link(BranchLink.objects.get(name=LINK))
    assert f"kernel={BUILD}" in client.get("/ipxe/dev/1").content.decode()
    newer = BUILD.replace("0123456789", "abcdef0123")
    publish(client, publisher, name=newer, content=b"build two")
    client.get(f"/api/symlink/{LINK}/{newer}")
    assert f"kernel={newer}" in client.get("/ipxe/dev/1").content.decode()
    served = client.get("/kernel/net/dev.efi")
    assert b"".join(served.streaming_content) == b"build two"


# --- the pipeline's own commands -----------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_build_pipelines_two_curl_lines_verbatim(live_server, tmp_path, settings):
    assert shutil.which("curl"), "make test installs curl"
    token = ApiToken.issue("zos-ci", ["publish"])[1]
    kernel = tmp_path / BUILD
    kernel.write_bytes(os.urandom(300_000))
    host = live_server.url  # http://127.0.0.1:PORT; the pipeline's https://<host> in production
    env = {**os.environ, "BOOTSTRAP_TOKEN": token, "kernel": BUILD, "linkname": LINK,
           "HOST": host}  # fmt: skip
    script = (
        'curl -b "token=${BOOTSTRAP_TOKEN}" -X POST -F "kernel=@${kernel}" "${HOST}/api/kernel"\n'
        'curl -b "token=${BOOTSTRAP_TOKEN}" "${HOST}/api/symlink/${linkname}/${kernel}"\n'
    )
    result = subprocess.run(["sh", "-ec", script], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"published {BUILD} (300000 bytes, sha256 {Kernel.objects.get().sha256})",
        f"{LINK} -> {BUILD} (was new)",
    ]
    assert (settings.ZOSBOOT_KERNELS_DIR / BUILD).read_bytes() == kernel.read_bytes()
