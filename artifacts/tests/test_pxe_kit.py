"""The PXE kit download: what is inside, that it is the same on every build, and that it is
validated, cached, counted and recorded like the images. On a real LAN: test_pxe_kit_lan.py."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

import pytest

from artifacts.formats import FORMATS, LICENSE_NAME, pxe_kit
from artifacts.models import Artifact
from provisioning.models import BootEvent, Farm
from provisioning.tests.test_metrics import figure

pytestmark = pytest.mark.django_db

REPO = Path(__file__).resolve().parents[2]
PUBLIC = "https://boot.example.org"
SCRIPT_URL = f"{PUBLIC}/ipxe/prod/1234/console=ttyS0%20zos-debug"
KIT = "/pxe-kit/prod/1234/console=ttyS0%20zos-debug"


@pytest.fixture(autouse=True)
def public_url(settings):
    settings.ZOSBOOT_PUBLIC_URL = PUBLIC
    settings.ZOSBOOT_MIRRORS = []


def body(response) -> bytes:
    assert response.status_code == 200, response.content[:300]
    return b"".join(response.streaming_content)


def unpack(data: bytes) -> dict[str, tarfile.TarInfo | bytes]:
    """Every entry of a kit: name -> TarInfo, and name + '!' -> its bytes for files."""
    entries: dict = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        for info in tar.getmembers():
            entries[info.name] = info
            if info.isfile():
                entries[info.name + "!"] = tar.extractfile(info).read()
    return entries


def text(entries: dict, name: str) -> str:
    return entries[f"zos-prod-1234-pxe-kit/{name}!"].decode()


@pytest.fixture
def kit(client, prod) -> dict:
    return unpack(body(client.get(KIT)))


# --- the archive ---------------------------------------------------------------------------


def test_the_kit_is_one_folder_with_the_tftp_root_the_config_the_start_script_and_the_howto(
    kit, ipxe_dir
):
    top = "zos-prod-1234-pxe-kit"
    names = [name for name in kit if not name.endswith("!")]
    assert names == sorted(names)
    assert names == [
        f"{top}",
        f"{top}/{LICENSE_NAME}",
        f"{top}/README.txt",
        f"{top}/dnsmasq.conf",
        f"{top}/run.sh",
        f"{top}/tftp",
        f"{top}/tftp/autoexec.ipxe",
        f"{top}/tftp/ipxe-arm64.efi",
        f"{top}/tftp/snponly.efi",
        f"{top}/tftp/undionly.kpxe",
    ]
    for name in ("undionly.kpxe", "snponly.efi", "ipxe-arm64.efi"):
        assert kit[f"{top}/tftp/{name}!"] == (ipxe_dir / name).read_bytes()
    assert kit[f"{top}/{LICENSE_NAME}!"] == (ipxe_dir / "copyright").read_bytes()
    for name in names:
        info = kit[name]
        assert (info.uid, info.gid, info.uname, info.gname) == (0, 0, "root", "root")
        assert info.mtime == kit[top].mtime
        # World-readable: dnsmasq reads the TFTP files as nobody.
        expected = 0o755 if info.isdir() or name.endswith("/run.sh") else 0o644
        assert info.mode == expected, name


def test_the_same_request_gives_the_same_bytes_and_gzip_carries_no_name_or_time(
    client, prod, settings
):
    first = body(client.get(KIT))
    Artifact.objects.all().delete()
    shutil.rmtree(settings.ZOSBOOT_ARTIFACTS_DIR)
    rebuilt = client.get(KIT)
    assert rebuilt["X-Zosboot-Cache"] == "miss"
    assert body(rebuilt) == first
    # gzip header: magic, method, flags (no FNAME), mtime 0.
    assert first[:3] == b"\x1f\x8b\x08" and first[3] & 0x08 == 0
    assert first[4:8] == b"\x00\x00\x00\x00"
    assert gzip.decompress(first)


def test_downloads_like_an_image_named_for_the_farm_and_cached_by_what_is_inside(client, prod):
    response = client.get(KIT)
    data = body(response)
    assert response["Content-Type"] == "application/gzip"
    assert response["Content-Disposition"] == (
        'attachment; filename="zos-prod-1234-pxe-kit.tar.gz"'
    )
    assert response["X-Checksum-Sha256"] == hashlib.sha256(data).hexdigest()
    assert response["Content-Length"] == str(len(data))
    assert response["X-Zosboot-Cache"] == "miss"
    assert client.get(KIT + "/")["X-Zosboot-Cache"] == "hit"
    # Another farm, other texts: another key, another file.
    other = client.get("/pxe-kit/prod/1235")
    assert other["X-Zosboot-Cache"] == "miss"
    assert other["X-Checksum-Sha256"] != response["X-Checksum-Sha256"]
    assert Artifact.objects.filter(format="pxe-kit").count() == 2
    assert Artifact.objects.get(label="prod/1235").extension == "tar.gz"


@pytest.mark.parametrize(
    "path,status",
    [
        ("/pxe-kit/nowhere/1", 404),
        ("/pxe-kit/prod/12a", 400),
        ("/pxe-kit/prod/1/a%0Ashell", 400),
        ("/pxe-kit/Prod/1", 400),
        ("/pxe-kit/test/1", 503),
        # The kit takes no kernel segment.
        ("/pxe-kit/prod/1/console=ttyS0/other.efi", 404),
    ],
)
def test_the_kit_is_validated_like_the_images(client, prod, path, status):
    response = client.get(path)
    assert response.status_code == status
    assert response.content.startswith(b"#!ipxe\n")
    assert not Artifact.objects.exists()
    assert not BootEvent.objects.filter(kind="pxe-kit").exists()


def test_a_disabled_farm_gets_no_kit(client, prod):
    Farm.objects.create(farmer_id=99, name="Gone", active=False)
    response = client.get("/pxe-kit/prod/99")
    assert response.status_code == 403
    assert b"farm 99 is disabled" in response.content


def test_without_a_public_url_only_an_explicit_host_may_be_named(client, prod, settings):
    settings.ZOSBOOT_PUBLIC_URL = ""
    settings.ALLOWED_HOSTS = ["*"]
    assert client.get(KIT, HTTP_HOST="evil.example").status_code == 400


# --- what the kit says ---------------------------------------------------------------------


def test_dnsmasq_conf_is_proxy_dhcp_with_one_ipxe_build_per_firmware_and_the_url_for_ipxe(kit):
    conf = text(kit, "dnsmasq.conf")
    lines = [line for line in conf.splitlines() if line and not line.startswith("#")]
    assert "dhcp-range=@KIT_ADDRESS@,proxy" in lines
    assert "port=0" in lines and "enable-tftp" in lines and "tftp-root=@TFTP_ROOT@" in lines
    assert "dhcp-userclass=set:ipxe,iPXE" in lines and "dhcp-match=set:ipxe,175" in lines
    services = [line for line in lines if line.startswith("pxe-service=")]
    assert services == [
        'pxe-service=tag:!ipxe,x86PC,"Zero-OS (BIOS)",undionly.kpxe',
        'pxe-service=tag:!ipxe,BC_EFI,"Zero-OS (UEFI)",snponly.efi',
        'pxe-service=tag:!ipxe,X86-64_EFI,"Zero-OS (UEFI)",snponly.efi',
        'pxe-service=tag:!ipxe,ARM64_EFI,"Zero-OS (arm64 UEFI)",ipxe-arm64.efi',
    ]
    # iPXE gets the script, with the kit's address as the server (or it ignores the answer).
    assert f"dhcp-boot=tag:ipxe,{SCRIPT_URL},,@KIT_ADDRESS@" in lines
    # No plain dhcp-boot: only iPXE ever gets a file that way.
    assert [line for line in lines if line.startswith("dhcp-boot=")] == [
        f"dhcp-boot=tag:ipxe,{SCRIPT_URL},,@KIT_ADDRESS@"
    ]


@pytest.mark.skipif(shutil.which("dnsmasq") is None, reason="dnsmasq is not installed")
def test_dnsmasq_accepts_the_config_as_run_sh_fills_it_in(kit, tmp_path):
    conf = text(kit, "dnsmasq.conf")
    for placeholder, value in (
        ("@INTERFACE@", "eth0"), ("@KIT_ADDRESS@", "192.168.1.5"), ("@TFTP_ROOT@", str(tmp_path)),
    ):  # fmt: skip
        conf = conf.replace(placeholder, value)
    result = subprocess.run(
        ["dnsmasq", "--test", "--conf-file=-"], input=conf, capture_output=True, text=True,
        timeout=10, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "syntax check OK" in result.stderr


def test_commas_and_spaces_of_the_arguments_cannot_split_the_dnsmasq_line(client, prod):
    entries = unpack(body(client.get("/pxe-kit/prod/1234/a=1,2%20b=3")))
    conf = entries["zos-prod-1234-pxe-kit/dnsmasq.conf!"].decode()
    url = f"{PUBLIC}/ipxe/prod/1234/a=1%2C2%20b=3"
    assert f"dhcp-boot=tag:ipxe,{url},,@KIT_ADDRESS@" in conf
    # The same script: the service reads the encoded path back as the same arguments.
    served = client.get("/ipxe/prod/1234/a=1%2C2%20b=3").content.decode()
    assert "farmer_id=1234 a=1,2 b=3" in served


def test_a_script_url_too_long_for_a_dhcp_answer_sends_ipxe_to_the_tftp_autoexec(client, prod):
    extra = "zos.x=" + "a" * 200
    entries = unpack(body(client.get(f"/pxe-kit/prod/1234/{extra}")))
    conf = entries["zos-prod-1234-pxe-kit/dnsmasq.conf!"].decode()
    assert "dhcp-boot=tag:ipxe,autoexec.ipxe,,@KIT_ADDRESS@" in conf
    autoexec = entries["zos-prod-1234-pxe-kit/tftp/autoexec.ipxe!"].decode()
    assert f"chain --timeout 60000 --autofree {PUBLIC}/ipxe/prod/1234/{extra} ||" in autoexec


def test_autoexec_brings_the_network_up_then_tries_the_service_and_each_mirror(
    client, prod, settings
):
    settings.ZOSBOOT_MIRRORS = ["http://mirror-a.example", "http://mirror-b.example:8080"]
    entries = unpack(body(client.get(KIT)))
    script = entries["zos-prod-1234-pxe-kit/tftp/autoexec.ipxe!"].decode()
    assert script.startswith("#!ipxe\n")
    lines = script.splitlines()
    chains = [line for line in lines if line.startswith("chain ")]
    path = "/ipxe/prod/1234/console=ttyS0%20zos-debug"
    assert chains == [
        f"chain --timeout 60000 --autofree {PUBLIC}{path} ||",
        f"chain --timeout 60000 --autofree http://mirror-a.example{path} ||",
        f"chain --timeout 60000 --autofree http://mirror-b.example:8080{path} ||",
    ]
    assert lines.index("ifconf --configurator dhcp net${zos_nic} || goto skip_nic") < (
        lines.index(chains[0])
    )
    # Each card, three rounds, then a readable error and a reboot (as provision.ipxe).
    assert "isset ${net${zos_nic}/mac} || goto network_round_failed" in lines
    assert "iseq ${zos_round} 3 && goto no_network ||" in lines
    assert "reboot" in lines
    # DHCP still names only the service itself: an answer holds one file name.
    conf = entries["zos-prod-1234-pxe-kit/dnsmasq.conf!"].decode()
    assert f"dhcp-boot=tag:ipxe,{SCRIPT_URL},,@KIT_ADDRESS@" in conf
    readme = entries["zos-prod-1234-pxe-kit/README.txt!"].decode()
    assert f"http://mirror-b.example:8080{path}" in readme


def test_the_provisioning_kit_chains_provision_with_each_cards_mac(client, db, settings):
    settings.ZOSBOOT_MIRRORS = ["http://mirror.example"]
    response = client.get("/pxe-kit-provision")
    assert 'filename="zos-provision-pxe-kit.tar.gz"' in response["Content-Disposition"]
    entries = unpack(body(response))
    top = "zos-provision-pxe-kit"
    script = entries[f"{top}/tftp/autoexec.ipxe!"].decode()
    assert [line for line in script.splitlines() if line.startswith("chain ")] == [
        f"chain --timeout 60000 --autofree {PUBLIC}/provision/${{net${{zos_nic}}/mac}} ||",
        "chain --timeout 60000 --autofree http://mirror.example/provision/${net${zos_nic}/mac} ||",
    ]
    conf = entries[f"{top}/dnsmasq.conf!"].decode()
    assert f"dhcp-boot=tag:ipxe,{PUBLIC}/provision/${{netX/mac:hexhyp}},,@KIT_ADDRESS@" in conf
    assert BootEvent.objects.get(kind="pxe-kit").path == "/pxe-kit-provision"


def test_run_sh_is_the_shell_script_as_written_and_parses(kit):
    run_sh = text(kit, "run.sh")
    source = (REPO / "templates" / "artifacts" / "pxe-kit" / "run.sh").read_text()
    description = "network prod, farm 1234, kernel arguments console=ttyS0 zos-debug"
    assert run_sh == source.replace("{{ kit.description }}", description)
    assert subprocess.run(["bash", "-n"], input=run_sh, text=True, check=False).returncode == 0


def test_run_sh_refuses_to_start_without_root(kit):
    # Somewhere an ordinary user may run it from (pytest's own directories are private).
    with tempfile.TemporaryDirectory(dir="/tmp", prefix="zosboot-run-sh-") as where:
        os.chmod(where, 0o755)
        run_sh = Path(where) / "run.sh"
        run_sh.write_text(text(kit, "run.sh"))
        run_sh.chmod(0o755)
        argv = [str(run_sh)]
        if os.geteuid() == 0:
            argv = ["runuser", "-u", "nobody", "--", *argv]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    assert result.returncode == 1
    assert result.stderr == (
        "run.sh: run it as root (sudo ./run.sh): DHCP and TFTP answer on ports below 1024\n"
    )


def test_readme_walks_through_the_three_ways_and_names_the_bad_dnsmasq(kit):
    readme = text(kit, "README.txt")
    assert "Kit for: network prod, farm 1234, kernel arguments console=ttyS0 zos-debug" in readme
    assert f"From:    {PUBLIC}{KIT}" in readme
    for heading in (
        "Way 1: this machine runs the kit",
        "Way 2: the router hands out the boot files instead",
        "Which file suits which machine",
        "dnsmasq versions",
    ):
        assert heading in readme
    assert "sudo apt install dnsmasq-base" in readme
    assert "sudo tar -xzf zos-prod-1234-pxe-kit.tar.gz -C /opt" in readme
    assert "cd /opt/zos-prod-1234-pxe-kit" in readme
    for router, field in (
        ("pfSense", "UEFI 64 bit File Name    snponly.efi"),
        ("OPNsense", f"Set iPXE boot filename                 {SCRIPT_URL}"),
        ("MikroTik", f"add name=zos-ipxe code=67 value=\"'{SCRIPT_URL}'\""),
        ("UniFi", "File Name = snponly.efi"),
        ("ISC Kea", f'"boot-file-name": "{SCRIPT_URL}"'),
    ):
        assert router in readme and field in readme, router
    assert "dnsmasq 2.92" in readme and "2.93" in readme


def test_a_download_is_recorded_and_counted_a_head_is_not(client, prod):
    line = 'zosboot_pxe_kits_total{network="prod"}'
    before = figure(client.get("/metrics").content.decode(), line)
    assert client.head(KIT).status_code == 200
    assert not BootEvent.objects.filter(kind="pxe-kit").exists()
    body(client.get(KIT, REMOTE_ADDR="192.0.2.44"))
    event = BootEvent.objects.get(kind="pxe-kit")
    assert (event.network, event.farmer_id, event.client_ip) == (prod, 1234, "192.0.2.44")
    assert event.path == "/pxe-kit/prod/1234/console=ttyS0 zos-debug"
    after = figure(client.get("/metrics").content.decode(), line)
    assert after - before == 1


def test_the_format_refuses_anything_but_a_kit(tc, tmp_path):
    with pytest.raises(ValueError, match="payload"):
        FORMATS["pxe-kit"].build(b"#!ipxe\necho hi\n", tmp_path / "k.tar.gz", tmp_path, tc)
    with pytest.raises(ValueError, match="exactly these texts"):
        pxe_kit.payload("zos-x", {"README.txt": ""})
    with pytest.raises(ValueError, match="folder name"):
        pxe_kit.payload("../x", {name: "" for name in pxe_kit.TEXTS})
