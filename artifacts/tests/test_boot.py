"""End to end: download each image from the service, boot it in QEMU, and read the command
line the real kernel it fetched from the service was started with.

The service runs as pytest-django's live server on 127.0.0.1; the guest reaches it only as
http://10.0.2.100 through the harness's restricted relay. The network's kernel is a real
Debian kernel (setup/test-kernel.sh). A test passes only when that kernel prints
`runmode=... farmer_id=...` and the extra arguments on the serial console.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from urllib.parse import quote

import pytest
from django.test import Client

from artifacts.tests import qemu
from provisioning.kernels import register_kernel
from provisioning.models import BootEvent, Farm, Network, Node

REPO = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.boot, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="session")
def test_kernel() -> Path:
    problems = qemu.host_problems()
    assert not problems, "; ".join(problems) + " (make test installs them)"
    result = subprocess.run(
        ["bash", str(REPO / "setup" / "test-kernel.sh")],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert result.returncode == 0, f"setup/test-kernel.sh failed:\n{result.stderr}"
    return Path(result.stdout.strip())


@pytest.fixture
def service(live_server, settings, test_kernel):
    """The live service as the guest sees it, with the real kernel on the `test` network."""
    settings.ZOSBOOT_PUBLIC_URL = qemu.GUEST_URL
    settings.ZOSBOOT_NTP_SERVER = ""  # the guest reaches nothing but the service
    settings.ALLOWED_HOSTS = [qemu.GUEST_SERVER, "localhost", "127.0.0.1", "testserver"]
    kernel, _ = register_kernel(test_kernel, "debian-vmlinuz.efi")
    boot_network().switch_kernel(kernel)
    return int(live_server.url.rsplit(":", 1)[1])


def boot_network() -> Network:
    # Transactional tests flush the networks the data migration made.
    network, _ = Network.objects.get_or_create(slug="test", defaults={"name": "Testnet"})
    return network


def download(path: str, dest: Path) -> Path:
    response = Client().get(path)
    assert response.status_code == 200, response.content[:500]
    dest.write_bytes(b"".join(response.streaming_content))
    return dest


def boot_and_read_cmdline(media, firmware: str, port: int, tmp_path: Path) -> str:
    result = qemu.boot(media, firmware=firmware, http_port=port, timeout=240, workdir=tmp_path)
    assert result.kernel_cmdline, result.log[-3000:]
    # The kernel came from the service: its download is in the boot history.
    assert BootEvent.objects.filter(kind="kernel", kernel_name="debian-vmlinuz.efi").exists()
    return result.kernel_cmdline


def expect_farm(cmdline: str, farm: int, marker: str) -> None:
    assert f"runmode=test panic=7200 farmer_id={farm}" in cmdline, cmdline
    assert f"console=ttyS0 zos.case={marker}" in cmdline, cmdline


def image_path(fmt: str, marker: str) -> str:
    return f"/{fmt}/test/4242/" + quote(f"console=ttyS0 zos.case={marker}", safe="")


BOOTS = [
    # (case, format, medium, firmware)
    ("iso-bios-cd", "iso", "Cdrom", "bios"),
    ("iso-uefi-cd", "iso", "Cdrom", "uefi"),
    ("usb-bios-stick", "usb", "UsbStick", "bios"),
    ("usb-uefi-stick", "usb", "UsbStick", "uefi"),
    ("uefimg-uefi-stick", "uefimg", "UsbStick", "uefi"),
]


@pytest.mark.parametrize(("case", "fmt", "medium", "firmware"), BOOTS, ids=[b[0] for b in BOOTS])
def test_image_boots_the_farm_kernel(service, tmp_path, case, fmt, medium, firmware):
    image = download(image_path(fmt, case), tmp_path / f"{case}.img")
    cmdline = boot_and_read_cmdline(getattr(qemu, medium)(image), firmware, service, tmp_path)
    expect_farm(cmdline, 4242, case)


def _esp_with(efi: Path, root: Path) -> Path:
    """An ESP holding nothing but the one file, as \\EFI\\BOOT\\BOOTX64.EFI."""
    boot_dir = root / "esp" / "EFI" / "BOOT"
    boot_dir.mkdir(parents=True)
    (boot_dir / "BOOTX64.EFI").write_bytes(efi.read_bytes())
    return root / "esp"


def test_uefi_executable_alone_on_an_esp_boots_the_farm_kernel(service, tmp_path):
    efi = download(image_path("uefi", "uefi-alone"), tmp_path / "zos.efi")
    esp = _esp_with(efi, tmp_path)
    assert [p.name for p in esp.rglob("*") if p.is_file()] == ["BOOTX64.EFI"]
    cmdline = boot_and_read_cmdline(qemu.EspDir(esp), "uefi", service, tmp_path)
    expect_farm(cmdline, 4242, "uefi-alone")


def test_ipxe_kernel_boots_the_documented_grub_way(service, tmp_path):
    tar = download(image_path("krn", "krn-grub"), tmp_path / "zos.tar")
    cd = qemu.grub_bios_cd(tar, tmp_path / "grub.iso", tmp_path)
    cmdline = boot_and_read_cmdline(qemu.Cdrom(cd), "bios", service, tmp_path)
    expect_farm(cmdline, 4242, "krn-grub")


@pytest.fixture
def provisioned_node(service):
    farm = Farm.objects.create(farmer_id=777, name="Provisioned farm")
    return Node.objects.create(
        mac=qemu.DEFAULT_MAC,
        farm=farm,
        network=boot_network(),
        extra_args="console=ttyS0 zos.case=provision",
    )


def test_krn_provision_reaches_provision_for_the_node(service, provisioned_node, tmp_path):
    tar = download("/krn-provision", tmp_path / "provision.tar")
    cd = qemu.grub_bios_cd(tar, tmp_path / "grub.iso", tmp_path)
    cmdline = boot_and_read_cmdline(qemu.Cdrom(cd), "bios", service, tmp_path)
    expect_farm(cmdline, 777, "provision")
    provisioned_node.refresh_from_db()
    assert provisioned_node.boot_count == 1 and provisioned_node.last_seen is not None


def test_uefi_provision_reaches_provision_for_the_node(service, provisioned_node, tmp_path):
    efi = download("/uefi-provision", tmp_path / "provision.efi")
    cmdline = boot_and_read_cmdline(
        qemu.EspDir(_esp_with(efi, tmp_path)), "uefi", service, tmp_path
    )
    expect_farm(cmdline, 777, "provision")
    assert BootEvent.objects.filter(node=provisioned_node, kind="script").count() == 1
