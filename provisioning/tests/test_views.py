import hashlib
import io
import os
import re
import tarfile

import pytest
from django.core.files.base import ContentFile

from provisioning.models import BootEvent, Farm, Kernel, Network

pytestmark = pytest.mark.django_db


def image_script(client, path: str, **headers) -> str:
    """The script an image carries: the one inside a krn-tar download."""
    response = client.get(path, **headers)
    assert response.status_code == 200, response.content[:300]
    with tarfile.open(fileobj=io.BytesIO(b"".join(response.streaming_content))) as tar:
        return tar.extractfile("zos/zos.ipxe").read().decode()


def test_ipxe_script_for_network_and_farm(client, prod):
    response = client.get("/ipxe/prod/1234")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert "no-cache" in response["Cache-Control"]
    script = response.content.decode()
    assert script.startswith("#!ipxe\n")
    # The kernel by its content address, relative: from the server that served the script.
    assert f"set zos_source0 /kernel/sha256/{prod.kernel.sha256}\n" in script
    token = re.search(r"set zos_report /boot-report/([0-9a-f.]+)\n", script).group(1)
    assert (
        "imgfetch --timeout 60000 --name zos ${zos_source${zos_src}}"
        f"?mac=${{net${{zos_nic}}/mac:hexhyp}}&boot={token} nomodeset version=v3 runmode=prod "
        "panic=7200 farmer_id=1234 && goto start ||\n"
    ) in script
    assert "imgexec zos" in script


@pytest.mark.parametrize(
    "path",
    [
        "/ipxe/prod",
        "/ipxe/prod/",
        "/ipxe/prod/1234/",
        "/ipxe/prod/1234/console=ttyS0/",
        "/ipxe/prod/1234/console=ttyS0/zero-os-development-amd64.efi/",
    ],
)
def test_every_depth_with_or_without_trailing_slash(client, prod, path):
    assert client.get(path).status_code == 200
    assert client.get(path.rstrip("/")).status_code == 200


def test_network_without_farm_has_no_farmer_id(client, prod):
    script = client.get("/ipxe/prod").content.decode()
    assert "runmode=prod panic=7200 &&" in script
    assert "farmer_id=" not in script


def test_extra_args_follow_the_service_arguments_and_slash_escape_is_undone(client, prod):
    prod.extra_args = "zos-debug"
    prod.save()
    script = client.get("/ipxe/prod/7/console=ttyS0 root=___dev___vda").content.decode()
    assert "runmode=prod panic=7200 farmer_id=7 zos-debug console=ttyS0 root=/dev/vda &&" in script


def test_fourth_segment_names_the_kernel(client, prod, make_kernel):
    v4 = make_kernel("zero-os-v4.efi", b"other")
    script = client.get("/ipxe/prod/7/console=ttyS0/zero-os-v4.efi").content.decode()
    assert f"set zos_source0 {v4.content_path}\n" in script


def test_public_url_setting_decides_the_urls_in_scripts(client, prod, settings):
    settings.ZOSBOOT_PUBLIC_URL = "https://bootstrap.example.org"
    settings.ALLOWED_HOSTS = ["*"]
    script = image_script(client, "/krn-tar/prod/1", HTTP_HOST="evil.example.com")
    assert "chain --timeout 60000 --autofree https://bootstrap.example.org/ipxe/prod/1 ||" in script
    assert "evil" not in script


def test_host_header_outside_allowed_hosts_is_refused(client, prod, settings):
    settings.ALLOWED_HOSTS = ["boot.example.org"]
    response = client.get("/ipxe/prod/1", HTTP_HOST="evil.example.com")
    assert response.status_code == 400
    assert client.get("/ipxe/prod/1", HTTP_HOST="boot.example.org").status_code == 200


def test_wildcard_allowed_hosts_never_lets_the_host_header_name_the_server(client, prod, settings):
    settings.ALLOWED_HOSTS = ["*"]
    response = client.get("/ipxe/prod/1", HTTP_HOST="evil.example.com")
    assert response.status_code == 400
    assert b"ZOSBOOT_PUBLIC_URL" in response.content
    assert b"evil" not in response.content


def test_forwarded_proto_is_honoured_only_behind_a_trusted_proxy(client, prod, settings):
    settings.ALLOWED_HOSTS = ["boot.example.org"]
    headers = {"HTTP_HOST": "boot.example.org", "HTTP_X_FORWARDED_PROTO": "https"}
    assert "http://boot.example.org/" in image_script(client, "/krn-tar/prod/1", **headers)
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    assert "https://boot.example.org/" in image_script(client, "/krn-tar/prod/2", **headers)


@pytest.mark.parametrize(
    "path,status,reason",
    [
        ("/ipxe/nowhere/1", 404, "unknown network"),
        ("/ipxe/PROD/1", 400, "network name"),
        ("/ipxe/prod/12a", 400, "digits only"),
        ("/ipxe/prod/0", 400, "between 1 and 4294967295"),
        ("/ipxe/prod/4294967296", 400, "between 1 and 4294967295"),
        ("/ipxe/prod/1/a%0Achain%20x", 400, "newline"),
        ("/ipxe/prod/1/runmode=dev", 400, "runmode="),
        ("/ipxe/prod/1/x/nope.efi", 404, "unknown kernel"),
        ("/ipxe/prod/1/x/..%2F..%2Fetc", 404, ""),
    ],
)
def test_bad_requests_get_a_readable_ipxe_error(client, prod, path, status, reason):
    response = client.get(path)
    assert response.status_code == status
    body = response.content.decode()
    assert body.startswith("#!ipxe\n")
    assert f"zosboot error {status}" in body
    assert reason in body
    assert "prompt" in body


def test_inactive_network_is_not_served(client, prod):
    prod.active = False
    prod.save()
    assert client.get("/ipxe/prod/1").status_code == 404


def test_network_without_kernel_answers_503(client, db):
    response = client.get("/ipxe/test/1")
    assert response.status_code == 503
    assert b"no kernel assigned" in response.content
    assert response["Retry-After"]


def test_disabled_farm_is_refused(client, prod):
    Farm.objects.create(farmer_id=1234, name="Old", active=False)
    assert client.get("/ipxe/prod/1234").status_code == 403


def test_known_farm_name_is_shown(client, prod):
    Farm.objects.create(farmer_id=1234, name="Green Acres")
    assert "Farm........: 1234 Green Acres" in client.get("/ipxe/prod/1234").content.decode()


def test_script_is_recorded_in_boot_history(client, prod, kernel):
    client.get("/ipxe/prod/1234", HTTP_USER_AGENT="iPXE/1.21.1", REMOTE_ADDR="10.1.2.3")
    event = BootEvent.objects.get()
    assert event.kind == BootEvent.Kind.SCRIPT
    assert (event.network, event.farmer_id, event.client_ip) == (prod, 1234, "10.1.2.3")
    assert (event.kernel_name, event.kernel_sha256) == (kernel.name, kernel.sha256)
    assert event.user_agent == "iPXE/1.21.1"


def test_kernel_by_name_is_streamed_with_checksum_headers(client, kernel):
    response = client.get("/kernel/zero-os-development-amd64.efi")
    assert response.status_code == 200
    assert response.streaming
    body = b"".join(response.streaming_content)
    assert body == b"kernel bytes"
    assert response["Content-Length"] == str(len(body))
    assert response["ETag"] == f'"{hashlib.sha256(body).hexdigest()}"'
    assert 'filename="zero-os-development-amd64.efi"' in response["Content-Disposition"]
    assert BootEvent.objects.get().kind == BootEvent.Kind.KERNEL


def test_network_kernel_follows_the_pointer(client, prod, make_kernel):
    newer = make_kernel("zero-os-v2.efi", b"new kernel")
    assert b"".join(client.get("/kernel/net/prod.efi").streaming_content) == b"kernel bytes"
    prod.switch_kernel(newer)
    assert b"".join(client.get("/kernel/net/prod.efi").streaming_content) == b"new kernel"


def test_head_gives_headers_without_body_or_history(client, kernel):
    response = client.head("/kernel/zero-os-development-amd64.efi")
    assert response.status_code == 200
    assert response["Content-Length"] == str(kernel.size)
    assert response["ETag"] == f'"{kernel.sha256}"'
    assert response.content == b""
    assert not BootEvent.objects.exists()


def test_matching_etag_answers_not_modified(client, kernel):
    response = client.get(
        "/kernel/zero-os-development-amd64.efi", HTTP_IF_NONE_MATCH=f'"{kernel.sha256}"'
    )
    assert response.status_code == 304


@pytest.mark.parametrize(
    "path,status",
    [
        ("/kernel/nope.efi", 404),
        ("/kernel/..%2Fsettings.py", 404),
        ("/kernel/.env", 400),
        ("/kernel/net/nope.efi", 404),
        ("/kernel/net/test.efi", 503),
    ],
)
def test_kernel_lookups_never_touch_the_filesystem_by_path(client, kernel, path, status):
    assert client.get(path).status_code == status


def test_kernel_names_are_looked_up_not_joined_onto_the_store(client, kernel, settings):
    (settings.ZOSBOOT_KERNELS_DIR / "stray.efi").write_bytes(b"not registered")
    assert client.get("/kernel/stray.efi").status_code == 404


def test_missing_kernel_file_is_a_clear_503(client, kernel):
    os.remove(kernel.file.path)
    response = client.get("/kernel/zero-os-development-amd64.efi")
    assert response.status_code == 503
    assert b"missing on the server" in response.content


def test_post_is_not_allowed(client, prod):
    assert client.post("/ipxe/prod/1").status_code == 405


def test_unknown_page_is_a_plain_text_404(client, db):
    response = client.get("/nothing/here")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/plain")


def test_kernel_upload_hashes_the_file(db):
    kernel = Kernel(name="k.efi")
    kernel.file.save("whatever-uploaded-name", ContentFile(b"abc"), save=False)
    kernel.save()
    assert kernel.sha256 == hashlib.sha256(b"abc").hexdigest()
    assert kernel.size == 3
    assert kernel.file.name == "k.efi"
    assert Network.objects.filter(kernel=kernel).count() == 0


def test_client_address_comes_from_the_proxy_only_when_trusted(client, prod, settings):
    headers = {"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": "6.6.6.6, 10.0.0.7"}
    client.get("/ipxe/prod/1", **headers)
    settings.ZOSBOOT_TRUST_PROXY = True
    client.get("/ipxe/prod/1", **headers)
    ips = list(BootEvent.objects.order_by("pk").values_list("client_ip", flat=True))
    assert ips == ["127.0.0.1", "10.0.0.7"]


def test_public_url_check_flags_a_malformed_url(settings):
    from django.core import checks

    settings.ZOSBOOT_PUBLIC_URL = "ftp://boot.example.org"
    assert "provisioning.E001" in [m.id for m in checks.run_checks()]
    settings.ZOSBOOT_PUBLIC_URL = ""
    settings.ALLOWED_HOSTS = ["*"]
    assert "provisioning.W001" in [m.id for m in checks.run_checks()]
