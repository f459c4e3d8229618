"""Image downloads: the URL contract, headers, errors, and the script inside."""

import hashlib
import io
import tarfile

import pytest
from django.core.management import call_command

from artifacts.formats.lkrn import extract_script
from artifacts.models import Artifact

pytestmark = pytest.mark.django_db


def _body(response) -> bytes:
    return b"".join(response.streaming_content)


def _krn_script(response) -> str:
    """The script inside a single-file krn download."""
    assert response.status_code == 200, response.content
    return extract_script(_body(response)).decode()


def _krn_tar_script(response) -> str:
    with tarfile.open(fileobj=io.BytesIO(_body(response))) as tar:
        return tar.extractfile("zos/zos.ipxe").read().decode()


@pytest.mark.parametrize(
    "fmt,filename,content_type",
    [
        ("iso", "zos-prod-1234.iso", "application/x-iso9660-image"),
        ("usb", "zos-prod-1234-usb.img", "application/octet-stream"),
        ("uefimg", "zos-prod-1234-uefi.img", "application/octet-stream"),
        ("uefi", "zos-prod-1234.efi", "application/efi"),
        ("krn", "zos-prod-1234.lkrn", "application/octet-stream"),
        ("krn-tar", "zos-prod-1234-ipxe.tar", "application/x-tar"),
    ],
)
def test_each_format_downloads_with_checksum_headers(client, prod, fmt, filename, content_type):
    response = client.get(f"/{fmt}/prod/1234")
    assert response.status_code == 200
    body = _body(response)
    digest = hashlib.sha256(body).hexdigest()
    assert response["X-Checksum-Sha256"] == digest
    assert response["ETag"] == f'"{digest}"'
    assert response["Content-Length"] == str(len(body))
    assert response["Content-Type"] == content_type
    assert response["Content-Disposition"] == f'attachment; filename="{filename}"'
    assert response["X-Zosboot-Cache"] == "miss"
    assert client.get(f"/{fmt}/prod/1234/")["X-Zosboot-Cache"] == "hit"


def test_the_image_chains_the_script_ipxe_serves_for_the_same_path(client, prod, settings):
    settings.ZOSBOOT_MIRRORS = ["http://edge.example.org", "https://cdn.example.org"]
    inside = _krn_script(client.get("/krn/prod/1234/console=ttyS0___x%20y"))
    path = "/ipxe/prod/1234/console=ttyS0___x%20y"
    # The public URL first, then each mirror, on every card.
    chains = [line for line in inside.splitlines() if line.startswith("chain ")]
    assert chains == [
        f"chain --timeout 60000 --autofree {base}{path} ||"
        for base in ("http://testserver", "http://edge.example.org", "https://cdn.example.org")
    ]
    served = client.get(path)
    assert b"farmer_id=1234 console=ttyS0/x y &&" in served.content
    assert _krn_tar_script(client.get("/krn-tar/prod/1234/console=ttyS0___x%20y")) == inside


@pytest.mark.parametrize("word", ["initrd=x", "BOOT_IMAGE=x"])
def test_krn_refuses_words_ipxe_would_strip_and_points_at_the_tar(client, prod, word):
    # iPXE removes these from the command line the single file carries its script in.
    response = client.get(f"/krn/prod/1234/{word}")
    assert response.status_code == 400
    assert response.content.startswith(b"#!ipxe\n") and b"/krn-tar/" in response.content
    assert client.get(f"/krn-tar/prod/1234/{word}").status_code == 200


def test_image_script_names_the_public_url(client, prod, settings):
    settings.ZOSBOOT_PUBLIC_URL = "https://bootstrap.example.org"
    assert "--autofree https://bootstrap.example.org/ipxe/prod/7 ||" in _krn_script(
        client.get("/krn/prod/7")
    )


def test_head_and_conditional_get(client, prod):
    first = client.get("/iso/prod/1")
    size, etag = first["Content-Length"], first["ETag"]
    head = client.head("/iso/prod/1")
    assert head.status_code == 200 and head.content == b""
    assert (head["Content-Length"], head["ETag"]) == (size, etag)
    assert client.get("/iso/prod/1", HTTP_IF_NONE_MATCH=etag).status_code == 304


@pytest.mark.parametrize(
    "path,status",
    [
        ("/iso/nowhere/1", 404),
        ("/usb/prod/12a", 400),
        ("/uefi/prod/1/a%0Ashell", 400),
        ("/uefimg/prod/1/x/missing.efi", 404),
        ("/krn/test/1", 503),
    ],
)
def test_images_validate_like_the_script_endpoint(client, prod, path, status):
    response = client.get(path)
    assert response.status_code == status
    assert response.content.startswith(b"#!ipxe\n")
    assert not Artifact.objects.exists()


def test_generic_targets_are_plain_ipxe(client, db, ipxe_dir):
    lkrn = client.get("/krn-generic")
    assert _body(lkrn) == (ipxe_dir / "ipxe.lkrn").read_bytes()
    assert 'filename="ipxe-generic.lkrn"' in lkrn["Content-Disposition"]
    efi = client.get("/uefi-generic/")
    assert _body(efi) == (ipxe_dir / "ipxe-amd64.efi").read_bytes()


def test_provision_targets_chain_the_provision_endpoint(client, db):
    krn = client.get("/krn-provision")
    assert 'filename="zos-provision.lkrn"' in krn["Content-Disposition"]
    script = _krn_script(krn)
    assert (
        "chain --timeout 60000 --autofree http://testserver/provision/${net${zos_nic}/mac} ||"
    ) in script
    assert client.get("/uefi-provision").status_code == 200


def test_build_failure_is_a_503_with_a_reason(client, prod, settings, tmp_path):
    settings.ZOSBOOT_IPXE_DIR = tmp_path / "no-ipxe-here"
    response = client.get("/iso/prod/1")
    assert response.status_code == 503
    assert b"could not be built" in response.content
    assert not Artifact.objects.exists()


def test_busy_builder_answers_503_with_retry_after(client, prod, settings, monkeypatch):
    from artifacts import builder

    def busy(*args, **kwargs):
        raise builder.Busy("too many boot images are being built right now")

    monkeypatch.setattr(builder, "get_or_build", busy)
    response = client.get("/iso/prod/1")
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert b"too many boot images" in response.content


def test_admin_lists_and_purges_images(admin_client, client, prod):
    client.get("/iso/prod/1")
    artifact = Artifact.objects.get()
    assert admin_client.get("/admin/artifacts/artifact/").status_code == 200
    admin_client.post(
        "/admin/artifacts/artifact/",
        {"action": "purge_selected", "_selected_action": [artifact.pk]},
    )
    assert not Artifact.objects.exists() and not artifact.path.exists()


def test_prebuild_builds_static_targets_and_network_images(prod, settings, capsys):
    settings.ZOSBOOT_PUBLIC_URL = "https://bootstrap.example.org"
    call_command("prebuild_artifacts")
    formats = sorted(Artifact.objects.values_list("format", flat=True))
    # 4 static targets + 6 formats for prod (the other networks have no kernel yet).
    assert formats == sorted(
        ["lkrn-plain", "efi-plain", "krn", "uefi"]
        + ["iso", "usb", "uefimg", "uefi", "krn", "krn-tar"]
    )
    assert "skipping test" in capsys.readouterr().out
    call_command("prebuild_artifacts")
    assert "0 built now" in capsys.readouterr().out


def test_prebuild_without_public_url_builds_only_plain_images(prod, capsys):
    call_command("prebuild_artifacts")
    assert sorted(Artifact.objects.values_list("format", flat=True)) == ["efi-plain", "lkrn-plain"]


def test_prune_artifacts_shrinks_the_cache_and_removes_strays(client, prod, settings, capsys):
    client.get("/krn/prod/1")
    client.get("/krn/prod/2")
    stray = settings.ZOSBOOT_ARTIFACTS_DIR / "ab" / ("ab" * 32 + ".iso")
    stray.parent.mkdir(parents=True, exist_ok=True)
    stray.write_bytes(b"x")
    call_command("prune_artifacts", "--max-bytes", "0", "--dry-run")
    assert Artifact.objects.count() == 2 and stray.exists()
    call_command("prune_artifacts", "--all")
    assert not Artifact.objects.exists() and not stray.exists()


# --- arm64 machines ------------------------------------------------------------------------


def test_the_uefi_program_for_arm64_is_asked_for_with_arch(client, prod):
    from artifacts.formats.standalone_efi import extract_script as efi_script

    arm = client.get("/uefi/prod/1234?arch=arm64")
    assert arm.status_code == 200
    assert arm["Content-Disposition"] == 'attachment; filename="zos-prod-1234-arm64.efi"'
    body = _body(arm)
    assert "--autofree http://testserver/ipxe/prod/1234 ||" in efi_script(body).decode()
    amd = _body(client.get("/uefi/prod/1234?arch=amd64"))
    assert amd == _body(client.get("/uefi/prod/1234")) != body
    assert Artifact.objects.get(format="uefi-arm64").label == "prod/1234 (arm64)"


def test_images_with_an_efi_partition_are_the_same_for_both_architectures(client, prod):
    iso = _body(client.get("/iso/prod/1234"))
    assert _body(client.get("/iso/prod/1234?arch=arm64")) == iso
    assert Artifact.objects.filter(format="iso").count() == 1


@pytest.mark.parametrize(
    "path,message",
    [
        ("/krn/prod/1234?arch=arm64", b"krn is for BIOS PCs, arm64 machines boot the iso"),
        ("/krn-generic?arch=arm64", b"krn-generic is for BIOS PCs"),
        ("/uefi/prod/1234?arch=riscv64", b"unknown architecture"),
    ],
)
def test_a_download_arm64_machines_cannot_use_is_refused_with_a_reason(client, prod, path, message):
    response = client.get(path)
    assert response.status_code == 400
    assert message in response.content
    assert not Artifact.objects.exists()


def test_plain_and_provisioning_uefi_programs_for_arm64(client, db, ipxe_dir):
    plain = client.get("/uefi-generic?arch=arm64")
    assert _body(plain) == (ipxe_dir / "ipxe-arm64.efi").read_bytes()
    assert 'filename="ipxe-generic-arm64.efi"' in plain["Content-Disposition"]
    provision = client.get("/uefi-provision?arch=arm64")
    assert 'filename="zos-provision-arm64.efi"' in provision["Content-Disposition"]
