"""End to end: download each image from the service, boot it in QEMU, and read the command
line the real kernel it fetched from the service was started with.

The service runs as pytest-django's live server on 127.0.0.1; the guest reaches it only as
http://10.0.2.100 through the harness's restricted relay. The network's kernel is a real
Debian kernel (setup/test-kernel.sh). A test passes only when that kernel prints
`runmode=... farmer_id=...` and the extra arguments on the serial console.

The network points at a kernel for each architecture, so every PC boot runs the script that
also serves arm64 machines, and the images carry iPXE for both. The arm64 boots (QEMU's
aarch64 `virt` board, AAVMF, TCG: slow, so only the ISO as a CD and the UEFI disk image) serve
Debian's arm64 kernel as the network's arm64 kernel.
"""

from __future__ import annotations

import os
import re
import subprocess
import tarfile
import threading
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from django.test import Client

from artifacts.formats import LKRN_HOWTO
from artifacts.tests import qemu
from artifacts.tests.conftest import boot_network
from provisioning.kernels import register
from provisioning.models import Arch, BootEvent, Farm, Kernel, Network, Node
from provisioning.tests.stack import SlowReader, running_stack

pytestmark = [pytest.mark.boot, pytest.mark.django_db(transaction=True)]


def download(path: str, dest: Path) -> Path:
    response = Client().get(path)
    assert response.status_code == 200, response.content[:500]
    dest.write_bytes(b"".join(response.streaming_content))
    return dest


def mac_pause(mac: str = qemu.DEFAULT_MAC) -> str:
    """What the boot script says of this card's pause: the MAC's last byte, modulo 16."""
    return f"Pause after a failed download on this card: {int(mac[-2:], 16) % 16} s"


def boot_and_read_cmdline(media, firmware: str, port: int, tmp_path: Path) -> str:
    result = qemu.boot(media, firmware=firmware, http_port=port, timeout=240, workdir=tmp_path)
    assert result.kernel_cmdline, result.log[-3000:]
    # iPXE computed the card's own pause from its MAC (32-bit BIOS and 64-bit UEFI builds alike).
    assert mac_pause() in result.log, result.log[-3000:]
    # The script picked the PC's kernel, not the arm64 one beside it.
    assert "Machine.....: amd64" in result.log, result.log[-3000:]
    # The kernel came from the service: its download is in the boot history.
    assert BootEvent.objects.filter(kind="kernel", kernel_name="debian-vmlinuz.efi").exists()
    assert not BootEvent.objects.filter(kind="kernel", kernel_name="arm64-placeholder.efi")
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


def test_krn_file_boots_alone_as_a_kernel(service, tmp_path):
    # The loader gets the one file and nothing else: no initrd, no command line.
    lkrn = download(image_path("krn", "krn-alone"), tmp_path / "zos-test-4242.lkrn")
    media = qemu.DirectKernel(lkrn)
    assert media.qemu_args() == ["-kernel", str(lkrn)]
    cmdline = boot_and_read_cmdline(media, "bios", service, tmp_path)
    expect_farm(cmdline, 4242, "krn-alone")


def test_krn_file_boots_from_a_bare_grub_linux16_entry(service, tmp_path):
    lkrn = download(image_path("krn", "krn-grub"), tmp_path / "zos-test-4242.lkrn")
    cd = qemu.grub_bios_cd_lkrn(lkrn, LKRN_HOWTO, tmp_path / "grub.iso", tmp_path)
    cmdline = boot_and_read_cmdline(qemu.Cdrom(cd), "bios", service, tmp_path)
    expect_farm(cmdline, 4242, "krn-grub")


def test_krn_tar_parts_boot_the_documented_grub_way(service, tmp_path):
    tar = download(image_path("krn-tar", "krn-tar-grub"), tmp_path / "zos.tar")
    cd = qemu.grub_bios_cd(tar, tmp_path / "grub.iso", tmp_path)
    cmdline = boot_and_read_cmdline(qemu.Cdrom(cd), "bios", service, tmp_path)
    expect_farm(cmdline, 4242, "krn-tar-grub")


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
    lkrn = download("/krn-provision", tmp_path / "zos-provision.lkrn")
    cd = qemu.grub_bios_cd_lkrn(lkrn, LKRN_HOWTO, tmp_path / "grub.iso", tmp_path)
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


def test_a_card_that_cannot_reach_the_service_is_given_up_for_the_next(service, settings, tmp_path):
    # net0 gets an address but reaches nothing: the image's script asks for the boot script
    # through it until the idle timeout, closes it and asks through net1, which boots.
    settings.ZOSBOOT_DOWNLOAD_IDLE_SECONDS = 3
    dead = "52:54:00:00:00:01"
    # The script an image carries: run first thing, no card opened before it.
    script = tmp_path / "boot.ipxe"
    with tarfile.open(download(image_path("krn-tar", "next-card"), tmp_path / "zos.tar")) as tar:
        script.write_bytes(tar.extractfile("zos/zos.ipxe").read())
    media = qemu.DirectKernel(Path(settings.ZOSBOOT_IPXE_DIR) / "ipxe.lkrn", initrd=script)
    result = qemu.boot(
        media, firmware="bios", http_port=service, timeout=240, workdir=tmp_path,
        dead_nics=(dead,),
    )  # fmt: skip
    expect_farm(result.kernel_cmdline or result.log[-3000:], 4242, "next-card")
    log = result.log
    on_net0 = log.index(f"Network card net0 ({dead}")
    on_net1 = log.index(f"Network card net1 ({qemu.DEFAULT_MAC}")
    assert log.index(f"Asking {qemu.GUEST_URL} for the boot script", on_net0) < on_net1
    assert "Zero-OS boot script served by zosboot" not in log[:on_net1]
    assert BootEvent.objects.filter(kind="script").count() == 1


# --- arm64 machines ------------------------------------------------------------------------


@pytest.fixture
def arm64_service(service, arm64_test_kernel):
    """The same service, Debian's arm64 kernel as the `test` network's arm64 kernel."""
    kernel, _ = register(arm64_test_kernel, "debian-vmlinuz-arm64.efi", arch="arm64")
    boot_network().switch_kernel(kernel, arch=Arch.ARM64)
    return service


ARM64_BOOTS = [
    # (case, format, medium): the ISO as a CD (what BMC virtual media is), the UEFI disk image
    ("iso-arm64-cd", "iso", "ScsiCdrom"),
    ("uefimg-arm64-stick", "uefimg", "UsbStick"),
]


@pytest.mark.parametrize(("case", "fmt", "medium"), ARM64_BOOTS, ids=[b[0] for b in ARM64_BOOTS])
def test_image_boots_the_arm64_kernel_on_an_arm64_machine(
    arm64_service, tmp_path, case, fmt, medium
):
    path = f"/{fmt}/test/4242/" + quote(f"console=ttyAMA0 zos.case={case}", safe="")
    image = download(path, tmp_path / f"{case}.img")
    # TCG emulates every arm64 instruction: firmware, iPXE and a 27 MB download take a while.
    result = qemu.boot(
        getattr(qemu, medium)(image), firmware="uefi-arm64", http_port=arm64_service,
        expect=qemu.ARM64_KERNEL_COMMAND_LINE, timeout=300, memory_mb=1024, workdir=tmp_path,
    )  # fmt: skip
    cmdline = qemu.kernel_cmdline(result.log, qemu.ARM64_KERNEL_COMMAND_LINE) or ""
    assert "runmode=test panic=7200 farmer_id=4242" in cmdline, result.log[-3000:]
    assert f"console=ttyAMA0 zos.case={case}" in cmdline, cmdline
    assert "Machine.....: arm64" in result.log and mac_pause() in result.log
    downloads = BootEvent.objects.filter(kind="kernel")
    assert set(downloads.values_list("kernel_name", flat=True)) == {"debian-vmlinuz-arm64.efi"}


def test_arm64_uefi_executable_alone_on_an_esp_boots_the_arm64_kernel(arm64_service, tmp_path):
    path = "/uefi/test/4242/" + quote("console=ttyAMA0 zos.case=uefi-arm64", safe="")
    efi = download(f"{path}?arch=arm64", tmp_path / "zos-arm64.efi")
    boot_dir = tmp_path / "esp" / "EFI" / "BOOT"
    boot_dir.mkdir(parents=True)
    (boot_dir / "BOOTAA64.EFI").write_bytes(efi.read_bytes())
    result = qemu.boot(
        qemu.EspDir(tmp_path / "esp", device="virtio-blk-pci"), firmware="uefi-arm64",
        http_port=arm64_service, expect=qemu.ARM64_KERNEL_COMMAND_LINE, timeout=300,
        memory_mb=1024, workdir=tmp_path,
    )  # fmt: skip
    cmdline = qemu.kernel_cmdline(result.log, qemu.ARM64_KERNEL_COMMAND_LINE) or ""
    assert "runmode=test panic=7200 farmer_id=4242" in cmdline, result.log[-3000:]
    assert "console=ttyAMA0 zos.case=uefi-arm64" in cmdline, cmdline


def test_a_machine_whose_architecture_has_no_kernel_reads_why_on_its_console(
    service, settings, tmp_path
):
    # The real iPXE running the real script: a PC on a network with only an arm64 kernel.
    network = Network.objects.create(slug="armonly", name="arm64 only")
    network.switch_kernel(Kernel.objects.get(name="arm64-placeholder.efi"), arch=Arch.ARM64)
    script = tmp_path / "boot.ipxe"
    script.write_bytes(Client().get("/ipxe/armonly/4242").content)
    media = qemu.DirectKernel(Path(settings.ZOSBOOT_IPXE_DIR) / "ipxe.lkrn", initrd=script)
    refusal = "Ask your support contact for a kernel for amd64 machines,"
    result = qemu.boot(
        media, firmware="bios", http_port=service, expect=re.escape(refusal), timeout=120,
        workdir=tmp_path,
    )  # fmt: skip
    log = qemu.tail(result.log, lines=200)
    assert "ERROR: no Zero-OS kernel for amd64 machines like this one on network armonly." in log
    assert "arm64 machines: arm64-placeholder.efi" in log
    assert "Downloading" not in log  # no card was even opened


# --- through the stack make run starts ----------------------------------------------------


@pytest.fixture
def stack_for_guest(tmp_path, ipxe_dir, test_kernel, request):
    """serve.sh as make run starts it, reached by the guest as http://10.0.2.100."""
    settings = {
        "ZOSBOOT_PUBLIC_URL": qemu.GUEST_URL,
        "DJANGO_ALLOWED_HOSTS": f"{qemu.GUEST_SERVER},127.0.0.1,localhost",
        **getattr(request, "param", {}),
    }
    with running_stack(tmp_path / "stack", ipxe_dir, **settings) as stack:
        kernel = tmp_path / "stack" / "debian-vmlinuz.efi"
        kernel.write_bytes(test_kernel.read_bytes())
        kernel.chmod(0o644)
        stack.manage("import_kernel", str(kernel), "--network", "test")
        yield stack


def _stack_download(stack, path: str, dest: Path) -> Path:
    status, _, body = stack.get(path)
    assert status == 200, body[:500]
    dest.write_bytes(body)
    return dest


def test_iso_boots_through_nginx_in_front_of_gunicorn(stack_for_guest, tmp_path):
    iso = _stack_download(stack_for_guest, image_path("iso", "nginx"), tmp_path / "zos.iso")
    result = qemu.boot(
        qemu.Cdrom(iso), firmware="bios", http_port=stack_for_guest.port, timeout=240,
        workdir=tmp_path,
    )  # fmt: skip
    expect_farm(result.kernel_cmdline or result.log[-3000:], 4242, "nginx")
    # nginx sent the kernel (its access log, written in batches), after gunicorn decided.
    access_log = tmp_path / "stack" / "data" / "log" / "nginx-access.log"
    sent = re.compile(r'"GET /kernel/sha256/[0-9a-f]{64}\?mac=\S+ HTTP/1\.1" 200 \d{6,} "-" "iPXE/')
    deadline = time.monotonic() + 15
    while not sent.search(access := access_log.read_text()):
        assert time.monotonic() < deadline, access
        time.sleep(0.5)
    # The download named the guest's card, so the history knows which machine runs what.
    runs = (
        "from provisioning.models import LatestBoot as L, Network as N; "
        "print(L.objects.filter(kernel_name=N.objects.get(slug='test').current_kernel.name, "
        f"mac={qemu.DEFAULT_MAC!r}).exists())"
    )
    deadline = time.monotonic() + 15  # the history is written every second
    while (seen := stack_for_guest.query(runs)) != "True":
        assert time.monotonic() < deadline, seen
        time.sleep(1)


@pytest.mark.parametrize(
    "stack_for_guest",
    [{"ZOSBOOT_FILE_DELIVERY": "django", "ZOSBOOT_MAX_STREAMS": "1"}],
    indirect=True,
)
def test_a_shed_kernel_download_is_retried_by_ipxe_and_the_node_boots(stack_for_guest, tmp_path):
    stack = stack_for_guest
    iso = _stack_download(stack, image_path("iso", "shed"), tmp_path / "zos.iso")
    # Another "node" holds the only stream slot, so the guest's first download is shed.
    holder = SlowReader(stack.port, "/kernel/net/test.efi")
    assert holder.status == 200

    def release_after_shed() -> None:
        deadline = time.monotonic() + 200
        while time.monotonic() < deadline:
            if re.search(r"GET /kernel/sha256/[0-9a-f]{64} 503 ", stack.log()):
                time.sleep(1)
                break
            time.sleep(0.2)
        holder.close()

    releaser = threading.Thread(target=release_after_shed)
    releaser.start()
    try:
        result = qemu.boot(
            qemu.Cdrom(iso), firmware="bios", http_port=stack.port, timeout=240,
            workdir=tmp_path,
        )  # fmt: skip
    finally:
        holder.close()
        releaser.join()
    expect_farm(result.kernel_cmdline or result.log[-3000:], 4242, "shed")
    log = stack.log()
    assert re.search(r"GET /kernel/sha256/[0-9a-f]{64} 503 ", log), log[-3000:]
    # iPXE retried by itself within the same imgfetch: no "Download failed" on the console.
    assert "Download failed" not in result.log


def test_a_build_published_by_the_pipeline_boots_through_its_branch_link(
    service, settings, test_kernel, tmp_path
):
    from provisioning.models import ApiToken

    build, link = "zero-os-development-generic-0123456789.efi", "zero-os-development-generic.efi"
    published = tmp_path / build
    published.write_bytes(test_kernel.read_bytes())
    env = {
        **os.environ, "BOOTSTRAP_TOKEN": ApiToken.issue("zos-ci", ["publish"])[1],
        "kernel": build, "linkname": link, "HOST": f"http://127.0.0.1:{service}",
    }  # fmt: skip
    pipeline = (  # the build pipeline's two calls (-f: fail the step on an HTTP error)
        'curl -fsS -b "token=${BOOTSTRAP_TOKEN}" -X POST -F "kernel=@${kernel}" '
        '"${HOST}/api/kernel"\n'
        'curl -fsS -b "token=${BOOTSTRAP_TOKEN}" "${HOST}/api/symlink/${linkname}/${kernel}"\n'
    )
    subprocess.run(["sh", "-ec", pipeline], cwd=tmp_path, env=env, check=True,
                   capture_output=True, timeout=120)  # fmt: skip
    path = image_path("ipxe", "branch-link") + f"/{link}"
    built = Kernel.objects.get(name=build)
    assert f"set zos_source0 {built.content_path}\n" in Client().get(path).content.decode()
    ipxe = Path(settings.ZOSBOOT_IPXE_DIR) / "ipxe.lkrn"
    media = qemu.DirectKernel(ipxe, append=f"dhcp && chain {qemu.GUEST_URL}{path}")
    result = qemu.boot(media, firmware="bios", http_port=service, timeout=240, workdir=tmp_path)
    expect_farm(result.kernel_cmdline or result.log[-3000:], 4242, "branch-link")
    # The same bytes as the network's kernel: the download is by their sha256.
    assert BootEvent.objects.filter(kind="kernel", kernel_sha256=built.sha256).exists()
