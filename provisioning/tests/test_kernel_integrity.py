"""A kernel's bytes never change under the nodes: no path (admin, API, commands, a model save,
a bulk update, raw SQL) changes what a registered kernel is; names never collide with another
URL; nothing empty, unparseable or half-received is ever kept; the store and the database
agree."""

from __future__ import annotations

import io
import os
import time
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, IntegrityError, connection, transaction

from provisioning import kernels, store
from provisioning.models import ApiToken, BootEvent, BranchLink, Kernel, Node
from provisioning.models.kernels import ImmutableKernel, KernelRecord

from .signing import ReleaseKey
from .test_publishing import BOUNDARY, multipart, publish, store_files
from .test_views import image_script

pytestmark = pytest.mark.django_db


def _file(tmp_path: Path, name: str, content: bytes) -> Path:
    path = tmp_path / "src" / name
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(content)
    return path


@pytest.fixture
def publisher():
    return ApiToken.issue("zos-ci", ["publish"])[1]


@pytest.fixture
def bearer():
    return {"HTTP_AUTHORIZATION": f"Bearer {ApiToken.issue('ci', ['publish', 'nodes'])[1]}"}


# --- immutable once registered ---------------------------------------------------------------


def test_a_model_save_cannot_change_a_kernels_bytes_architecture_or_name(prod, kernel):
    for field, value in (("sha256", "0" * 64), ("size", 1), ("arch", "arm64"), ("name", "x.efi")):
        fresh = Kernel.objects.get(pk=kernel.pk)
        setattr(fresh, field, value)
        with pytest.raises(ImmutableKernel, match=f"cannot change its {field}"):
            fresh.save()
    fresh = Kernel.objects.get(pk=kernel.pk)
    fresh.notes = "notes may change"
    fresh.save()
    assert Kernel.objects.get(pk=kernel.pk).notes == "notes may change"


def test_a_new_file_assigned_to_a_kernel_is_refused(kernel):
    from django.core.files.base import ContentFile

    kernel.file = ContentFile(b"rogue bytes", name=kernel.name)
    with pytest.raises(ImmutableKernel, match="file"):
        kernel.save()


def test_a_bulk_update_cannot_change_them_either(kernel):
    with pytest.raises(ImmutableKernel):
        Kernel.objects.filter(pk=kernel.pk).update(sha256="0" * 64)
    Kernel.objects.filter(pk=kernel.pk).update(notes="fine")


def test_the_database_itself_refuses_raw_sql_that_changes_a_kernel(kernel):
    """The trigger the migration adds: the last word for any path around the model."""
    with pytest.raises((IntegrityError, DatabaseError)), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("UPDATE provisioning_kernel SET sha256 = %s", ["0" * 64])
    with connection.cursor() as cursor:
        cursor.execute("UPDATE provisioning_kernel SET notes = %s", ["raw notes"])
    assert Kernel.objects.get(pk=kernel.pk).sha256 != "0" * 64


def test_the_admin_change_form_offers_no_file_architecture_or_name(admin_client, prod, kernel):
    url = f"/admin/provisioning/kernel/{kernel.pk}/change/"
    page = admin_client.get(url).content.decode()
    assert 'type="file" name="file"' not in page
    assert 'name="arch"' not in page
    assert 'name="name"' not in page
    before = kernel.sha256
    response = admin_client.post(
        url,
        {
            "name": "renamed.efi",
            "arch": "arm64",
            "file": SimpleUploadedFile("rogue.efi", b"rogue bytes"),
            "notes": "checked",
        },
    )
    assert response.status_code == 302
    kernel = Kernel.objects.get(pk=kernel.pk)
    assert (kernel.name, kernel.arch, kernel.sha256, kernel.notes) == (
        "zero-os-development-amd64.efi",
        "amd64",
        before,
        "checked",
    )
    assert admin_client.get("/kernel/net/prod.efi").getvalue() == b"kernel bytes"


def test_a_registered_kernel_is_read_only_on_disk(tmp_path, settings):
    kernel, _ = kernels.register(_file(tmp_path, "k.efi", b"bytes"))
    assert os.stat(kernel.file.path).st_mode & 0o777 == 0o444


# --- names -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["rel-2.efi.sig", "REL.SIG", "net", "sha256"])
def test_a_name_that_collides_with_another_url_is_refused_everywhere(
    client, publisher, bearer, tmp_path, kernel, name
):
    response = publish(client, publisher, name=name)
    assert response.status_code == 400, response.content
    response = client.get(f"/api/symlink/{name}/{kernel.name}")
    assert response.status_code == 400
    assert "choose another" in response.content.decode() or "reserved" in response.content.decode()
    response = client.put(
        f"/api/v1/links/{name}",
        data={"kernel": kernel.name},
        content_type="application/json",
        **bearer,
    )
    assert response.status_code in (400, 422)
    with pytest.raises(CommandError):
        call_command("import_kernel", str(_file(tmp_path, "k.efi", b"x")), "--name", name)
    assert not Kernel.objects.filter(name=name).exists()
    assert not BranchLink.objects.filter(name=name).exists()


def test_a_name_ending_in_sig_always_answers_with_the_signature(client, tmp_path, settings):
    release = ReleaseKey.allowed(tmp_path, settings)
    source = _file(tmp_path, "rel-1.efi", b"release one")
    kernels.register(source, signature=release.sign(source))
    response = client.get("/kernel/rel-1.efi.sig")
    assert response.content.decode().startswith("-----BEGIN SSH SIGNATURE-----")
    assert response["X-Zosboot-Signer"] == release.principal


# --- empty, and names never burned by a refusal ----------------------------------------------


def test_an_empty_kernel_is_refused_and_does_not_burn_its_name(client, publisher, bearer):
    response = publish(client, publisher, name="empty.efi", content=b"")
    assert response.status_code == 400
    assert "empty" in response.content.decode()
    data = multipart("kernel", "empty.efi", b"") + b""
    response = client.post(
        "/api/v1/kernels",
        data=data.replace(
            f"--{BOUNDARY}--".encode(),
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="sha256"\r\n\r\n'.encode()
            + b"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\r\n"
            + f"--{BOUNDARY}--".encode(),
        ),
        content_type=f"multipart/form-data; boundary={BOUNDARY}",
        **bearer,
    )
    assert response.status_code == 400
    assert "empty" in response.json()["detail"]
    assert (
        publish(client, publisher, name="empty.efi", content=b"the real build").status_code == 201
    )
    assert Kernel.objects.get(name="empty.efi").size == len(b"the real build")


def test_import_kernel_and_the_admin_refuse_an_empty_file(admin_client, tmp_path):
    with pytest.raises(CommandError, match="empty"):
        call_command("import_kernel", str(_file(tmp_path, "empty.efi", b"")))
    response = admin_client.post(
        "/admin/provisioning/kernel/add/",
        {"name": "", "arch": "amd64", "file": SimpleUploadedFile("e.efi", b"")},
    )
    assert response.status_code == 200
    assert not Kernel.objects.exists()


# --- signatures that cannot be stuck ---------------------------------------------------------

JUNK = (
    "-----BEGIN SSH SIGNATURE-----\n"
    "U1NIU0lHAAAAAQAAADMAAAALc3NoLWVkMjU1MTkAAAAgJUNLAAAAAAAAAAAAAAAAAAAAAAAA\n"
    "-----END SSH SIGNATURE-----\n"
)


def test_a_junk_signature_is_refused_at_upload_even_without_signers(
    client, publisher, tmp_path, settings
):
    settings.ZOSBOOT_RELEASE_SIGNERS = ""
    client.cookies["token"] = publisher
    body = multipart("kernel", "k.efi", b"bytes").replace(
        f"--{BOUNDARY}--".encode(),
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="signature"\r\n\r\n'.encode()
        + JUNK.encode()
        + f"\r\n--{BOUNDARY}--".encode(),
    )
    response = client.post(
        "/api/kernel", data=body, content_type=f"multipart/form-data; boundary={BOUNDARY}"
    )
    assert response.status_code == 400
    assert "does not verify" in response.content.decode()
    assert not Kernel.objects.exists()
    assert store_files(settings) == []


def test_a_well_formed_signature_without_signers_is_kept_as_not_checked(tmp_path, settings):
    release = ReleaseKey.make(tmp_path / "keys")
    settings.ZOSBOOT_RELEASE_SIGNERS = ""
    source = _file(tmp_path, "k.efi", b"bytes")
    kernel, _ = kernels.register(source, signature=release.sign(source))
    assert kernel.signature_label == "signed (signer not checked)"


def test_a_verifying_signature_replaces_one_that_does_not_and_is_recorded(
    client, publisher, tmp_path, settings, prod
):
    source = _file(tmp_path, "rel.efi", b"release bytes")
    kernel, _ = kernels.register(source)
    Kernel.objects.filter(pk=kernel.pk).update(signature=JUNK)  # kept by an older release
    release = ReleaseKey.allowed(tmp_path, settings)
    settings.ZOSBOOT_SIGNED_NETWORKS = ["prod"]
    with pytest.raises(ValidationError):
        prod.switch_kernel(Kernel.objects.get(pk=kernel.pk))
    signature = release.sign(source)
    client.cookies["token"] = publisher
    body = multipart("kernel", "rel.efi", b"release bytes").replace(
        f"--{BOUNDARY}--".encode(),
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="signature"\r\n\r\n'.encode()
        + signature.encode()
        + f"\r\n--{BOUNDARY}--".encode(),
    )
    response = client.post(
        "/api/kernel", data=body, content_type=f"multipart/form-data; boundary={BOUNDARY}"
    )
    assert response.status_code == 200
    assert f"signed by {release.principal}" in response.content.decode()
    kernel = Kernel.objects.get(pk=kernel.pk)
    assert kernel.signature == signature and kernel.signer == release.principal
    record = KernelRecord.objects.get(kernel=kernel, action=KernelRecord.Action.SIGNATURE)
    assert record.changed_via == "API token zos-ci" and "does not verify" in record.note
    assert prod.switch_kernel(kernel) is not None  # the protected network may boot it now


def test_a_signature_that_verifies_is_never_replaced(tmp_path, settings):
    release = ReleaseKey.allowed(tmp_path, settings)
    other = ReleaseKey.make(tmp_path / "other", principal="other@zosboot")
    (tmp_path / "allowed_signers").write_text(release.allowed_line() + other.allowed_line())
    source = _file(tmp_path, "rel.efi", b"release bytes")
    first = release.sign(source)
    kernel, _ = kernels.register(source, signature=first)
    kernels.register(source, signature=other.sign(source))
    assert Kernel.objects.get(pk=kernel.pk).signature == first


def test_the_admin_takes_a_signature_for_a_kernel_that_has_none(admin_client, tmp_path, settings):
    source = _file(tmp_path, "rel.efi", b"release bytes")
    kernel, _ = kernels.register(source)
    release = ReleaseKey.allowed(tmp_path, settings)
    signature = SimpleUploadedFile("rel.efi.sig", release.sign(source).encode())
    response = admin_client.post(
        f"/admin/provisioning/kernel/{kernel.pk}/change/",
        {"notes": "", "signature_file": signature},
    )
    assert response.status_code == 302
    assert Kernel.objects.get(pk=kernel.pk).signer == release.principal
    assert KernelRecord.objects.filter(kernel=kernel, action="signed").exists()


# --- uploads leave nothing behind ------------------------------------------------------------


def _leftovers(settings) -> list[str]:
    return store_files(settings)


def _after_the_kernel(extra: bytes) -> bytes:
    return multipart("kernel", "k.efi", b"kernel bytes" * 1000).replace(
        f"--{BOUNDARY}--\r\n".encode(), extra + f"--{BOUNDARY}--\r\n".encode()
    )


def _field(name: str, value: bytes) -> bytes:
    return (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
        + value
        + b"\r\n"
    )


def _file_part(name: str) -> bytes:
    return (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"; filename="{name}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\nx\r\n"
    ).encode()


@pytest.mark.parametrize(
    "extra",
    [
        pytest.param(b"".join(_field(f"f{i}", b"v") for i in range(1001)), id="too-many-fields"),
        pytest.param(b"".join(_file_part(f"f{i}") for i in range(101)), id="too-many-files"),
        pytest.param(_field("big", b"x" * (3 * 1024 * 1024)), id="text-field-too-large"),
    ],
)
def test_a_parser_limit_after_the_kernel_part_leaves_nothing(client, publisher, settings, extra):
    client.cookies["token"] = publisher
    response = client.post(
        "/api/kernel",
        data=_after_the_kernel(extra),
        content_type=f"multipart/form-data; boundary={BOUNDARY}",
    )
    assert response.status_code == 400, response.content
    assert "could not be read" in response.content.decode()
    assert _leftovers(settings) == []
    assert not Kernel.objects.exists()


def test_a_connection_cut_mid_upload_answers_400_and_leaves_nothing(publisher, settings):
    from django.test.client import Client

    body = multipart("kernel", "k.efi", b"kernel bytes" * 10000)
    client = Client()
    client.cookies["token"] = publisher
    # What the WSGI server hands over when the client went away: less than it declared.
    response = client.generic(
        "POST",
        "/api/kernel",
        data=body,
        content_type=f"multipart/form-data; boundary={BOUNDARY}",
        **{"wsgi.input": io.BytesIO(body[: len(body) // 2]), "CONTENT_LENGTH": str(len(body))},
    )
    assert response.status_code == 400
    assert "cut off" in response.content.decode() or "broke off" in response.content.decode()
    assert _leftovers(settings) == []


def test_a_chunked_upload_is_told_to_send_a_length(client, publisher, settings):
    client.cookies["token"] = publisher
    response = client.generic(
        "POST",
        "/api/kernel",
        content_type=f"multipart/form-data; boundary={BOUNDARY}",
        HTTP_TRANSFER_ENCODING="chunked",
        CONTENT_LENGTH="",
    )
    assert response.status_code == 411
    assert "Content-Length" in response.content.decode()


def test_abandoned_uploads_are_swept_after_an_hour(settings):
    incoming = kernels.incoming_dir()
    old, new = incoming / "upload-old", incoming / "upload-new"
    old.write_bytes(b"half")
    new.write_bytes(b"in progress")
    two_hours_ago = time.time() - 7200
    os.utime(old, (two_hours_ago, two_hours_ago))
    assert store.sweep_incoming() == ["upload-old"]
    assert new.exists() and not old.exists()
    old.write_bytes(b"half")
    os.utime(old, (two_hours_ago, two_hours_ago))
    call_command("prune_kernels", stdout=io.StringIO())
    assert not old.exists()


def test_a_failed_registration_takes_its_file_back_out_of_the_store(
    tmp_path, settings, monkeypatch
):
    def refuse(*args, **kwargs):
        raise IntegrityError("the database went away")

    monkeypatch.setattr(KernelRecord, "note_for", refuse)
    with pytest.raises(IntegrityError):
        kernels.register(_file(tmp_path, "k.efi", b"bytes"))
    assert store_files(settings) == []


# --- the store and the database agree --------------------------------------------------------


def test_check_store_reports_missing_changed_and_unregistered_files(tmp_path, settings):
    gone, _ = kernels.register(_file(tmp_path, "gone.efi", b"gone"))
    changed, _ = kernels.register(_file(tmp_path, "changed.efi", b"right"))
    kernels.register(_file(tmp_path, "fine.efi", b"fine"))
    os.unlink(gone.file.path)
    os.chmod(changed.file.path, 0o644)
    Path(changed.file.path).write_bytes(b"wrong")  # same size, other bytes
    (settings.ZOSBOOT_KERNELS_DIR / "stray.efi").write_bytes(b"stray")
    out = io.StringIO()
    with pytest.raises(CommandError, match="1 missing, 1 changed, 1 file"):
        call_command("check_store", stdout=out)
    said = out.getvalue()
    assert "gone.efi: registered, but its file is missing" in said
    assert "changed.efi: its file's sha256 is not the one registered" in said
    assert "stray.efi: a file in the store that no kernel is registered for" in said
    assert "fine.efi" not in said


def test_readyz_fails_on_a_kernel_it_cannot_serve_right_and_names_strays(
    client, tmp_path, settings
):
    kernel, _ = kernels.register(_file(tmp_path, "k.efi", b"right"))
    (settings.ZOSBOOT_KERNELS_DIR / "stray.efi").write_bytes(b"stray")
    check = client.get("/readyz").json()["checks"]["kernel_store"]
    assert check["ok"] and "1 file(s) without a kernel" in check["detail"]
    os.chmod(kernel.file.path, 0o644)
    Path(kernel.file.path).write_bytes(b"wrong")
    response = client.get("/readyz")
    assert response.status_code == 503
    assert "sha256 is not the one registered" in response.json()["checks"]["kernel_store"]["detail"]


def test_check_store_passes_on_a_store_that_agrees(tmp_path):
    kernels.register(_file(tmp_path, "k.efi", b"bytes"))
    out = io.StringIO()
    call_command("check_store", stdout=out)
    assert "0 missing, 0 changed, 0 file(s) without a kernel" in out.getvalue()


# --- removing unused kernels -----------------------------------------------------------------


def test_prune_kernels_removes_only_what_nothing_uses(
    tmp_path, settings, prod, django_capture_on_commit_callbacks
):
    made = {
        name: kernels.register(_file(tmp_path, name, name.encode()))[0]
        for name in ("network.efi", "linked.efi", "node.efi", "booted.efi", "old.efi", "back.efi")
    }
    prod.switch_kernel(made["back.efi"])
    prod.switch_kernel(made["network.efi"])  # back.efi is what prod would roll back to
    BranchLink.point("zero-os-latest.efi", made["linked.efi"])
    Node.objects.create(mac="52:54:00:00:00:01", kernel_override=made["node.efi"])
    BootEvent.objects.create(kind="kernel", kernel_name="booted.efi",
                             kernel_sha256=made["booted.efi"].sha256)  # fmt: skip
    out = io.StringIO()
    call_command("prune_kernels", "--dry-run", stdout=out)
    assert "Would remove old.efi" in out.getvalue()
    assert "Keeping booted.efi: nodes booted it in the last" in out.getvalue()
    assert "Keeping back.efi: a network would roll back to it" in out.getvalue()
    assert Kernel.objects.count() == 7  # prod's first kernel too, which nothing uses now
    with django_capture_on_commit_callbacks(execute=True):
        call_command("prune_kernels", stdout=io.StringIO())
    assert sorted(Kernel.objects.values_list("name", flat=True)) == [
        "back.efi", "booted.efi", "linked.efi", "network.efi", "node.efi",
    ]  # fmt: skip
    assert "old.efi" not in store_files(settings)
    assert KernelRecord.objects.get(kernel_name="old.efi", action="removed").changed_via == (
        "manage.py prune_kernels"
    )


# --- the API says what it means --------------------------------------------------------------


@pytest.mark.parametrize(
    "body", ["[null, null]", '"x"', "123", '{"actve": false}', "{}", '{"name": null}']
)
def test_a_farm_patch_that_changes_nothing_or_names_unknown_fields_is_a_422(client, bearer, body):
    client.post(
        "/api/v1/farms", data={"farmer_id": 7, "name": "Seven"},
        content_type="application/json", **bearer,
    )  # fmt: skip
    response = client.patch("/api/v1/farms/7", data=body, content_type="application/json", **bearer)
    assert response.status_code == 422, (body, response.content)
    good = client.patch(
        "/api/v1/farms/7", data='{"active": false}', content_type="application/json", **bearer
    )
    assert good.status_code == 200 and good.json()["active"] is False


def test_path_parameters_carry_their_patterns_in_the_document(client):
    document = client.get("/api/v1/openapi.json").json()
    parameters = {
        parameter["name"]: parameter["schema"]
        for operation in document["paths"].values()
        for method in operation.values()
        for parameter in method.get("parameters", [])
        if parameter["in"] == "path"
    }
    assert "pattern" in parameters["name"]
    assert "pattern" in parameters["slug"]
    assert "pattern" in parameters["mac"]
    assert parameters["farmer_id"]["minimum"] == 1


# --- conditional requests (RFC 9110) and ranges ----------------------------------------------


def test_if_none_match_compares_weakly_and_if_match_strongly(client, prod, kernel):
    etag = f'"{kernel.sha256}"'
    assert client.get("/kernel/net/prod.efi", HTTP_IF_NONE_MATCH=f"W/{etag}").status_code == 304
    assert client.get("/kernel/net/prod.efi", HTTP_IF_NONE_MATCH=f'"x", {etag}').status_code == 304
    assert client.get("/kernel/net/prod.efi", HTTP_IF_MATCH='"other"').status_code == 412
    assert client.get("/kernel/net/prod.efi", HTTP_IF_MATCH=f"W/{etag}").status_code == 412
    response = client.get("/kernel/net/prod.efi", HTTP_IF_MATCH=etag)
    assert response.status_code == 200 and response.getvalue() == b"kernel bytes"
    assert client.get("/kernel/net/prod.efi", HTTP_IF_MATCH="*").status_code == 200


def test_a_range_is_answered_with_its_bytes(client, prod, kernel):
    response = client.get("/kernel/net/prod.efi", HTTP_RANGE="bytes=7-")
    assert response.status_code == 206
    assert response.getvalue() == b"bytes"
    assert response["Content-Range"] == f"bytes 7-11/{kernel.size}"
    assert client.get("/kernel/net/prod.efi", HTTP_RANGE="bytes=-5").getvalue() == b"bytes"
    assert client.get("/kernel/net/prod.efi", HTTP_RANGE="bytes=99-").status_code == 416
    stale = client.get("/kernel/net/prod.efi", HTTP_RANGE="bytes=7-", HTTP_IF_RANGE='"old"')
    assert stale.status_code == 200 and stale.getvalue() == b"kernel bytes"


# --- no header decides where scripts send nodes ----------------------------------------------


def test_a_port_in_the_host_header_that_is_not_ours_is_refused(client, prod):
    response = client.get("/ipxe/prod/1", HTTP_HOST="127.0.0.1:1", SERVER_PORT="8000")
    assert response.status_code == 400
    assert "port 1 is not the one the service answers on" in response.content.decode()
    ours = client.get("/krn-tar/prod/1", HTTP_HOST="127.0.0.1:8000", SERVER_PORT="8000")
    assert b"http://127.0.0.1:8000/ipxe/prod/1" in b"".join(ours.streaming_content)


def test_forwarded_headers_count_only_from_a_trusted_proxy(client, prod, settings):
    headers = {"HTTP_X_FORWARDED_PROTO": "https", "HTTP_X_FORWARDED_HOST": "evil.example"}
    settings.ZOSBOOT_TRUST_PROXY = False
    text = image_script(client, "/krn-tar/prod/1", HTTP_HOST="localhost", **headers)
    assert "http://localhost/ipxe/prod/1" in text and "https:" not in text
    assert "evil" not in text


def test_gunicorn_trusting_localhost_cannot_turn_scripts_to_https():
    """gunicorn sets the scheme from X-Forwarded-Proto for 127.0.0.1; the front door puts the
    connection's own back before Django reads it."""
    import socket

    from provisioning.frontdoor import connection_scheme

    seen = {}

    def app(environ, start_response):
        seen["scheme"] = environ["wsgi.url_scheme"]
        return []

    plain = socket.socket()
    try:
        connection_scheme(app)({"gunicorn.socket": plain, "wsgi.url_scheme": "https"}, None)
    finally:
        plain.close()
    assert seen["scheme"] == "http"
