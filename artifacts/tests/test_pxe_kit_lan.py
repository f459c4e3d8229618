"""The PXE kit on a real LAN: real DHCP, real TFTP, real firmware.

A farm's LAN made of network namespaces (artifacts.tests.lan): a router running a plain
dnsmasq that hands out leases and no boot file, the kit unpacked and started with its own
run.sh on another machine of the LAN, and the boot service reachable only through a relay to
the live test server. Then:

- a probe asks the LAN what each firmware kind asks (BIOS, x86-64 UEFI 7 and 9, arm64 UEFI,
  and iPXE itself) and checks both offers, the kit's port-4011 answers and the TFTP files;
- QEMU guests on taps of that LAN boot from their network card: OVMF's own PXE loads
  snponly.efi, SeaBIOS runs QEMU's iPXE ROM, an arm64 machine's AAVMF loads ipxe-arm64.efi;
  each must reach the Linux kernel's command line with the farm's arguments, having
  downloaded its architecture's kernel from the service.

Root only; skipped, with the kernel's refusal as the reason, where network namespaces cannot
be made. Everything is removed at the end, whatever happened.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest
from django.test import Client

from artifacts.tests import lan, qemu
from provisioning.kernels import register
from provisioning.models import Arch, BootEvent, Farm, Network, Node

pytestmark = [pytest.mark.boot, pytest.mark.django_db(transaction=True)]

FARM = 4242
MARKER = "console=ttyS0 zos.case=pxe-kit"
KIT_PATH = f"/pxe-kit/test/{FARM}/" + quote(MARKER, safe="")
SCRIPT_URL = f"{lan.SERVICE_URL}/ipxe/test/{FARM}/console=ttyS0%20zos.case=pxe-kit"
#: What the kit sends each firmware kind (DHCP option 93).
FIRMWARE_FILES = {0: "undionly.kpxe", 7: "snponly.efi", 9: "snponly.efi", 11: "ipxe-arm64.efi"}


@pytest.fixture(scope="module")
def farm_lan(live_server, tmp_path_factory):
    problems = lan.missing_tools() + qemu.host_problems()
    assert not problems, "; ".join(problems) + " (make test installs them)"
    port = int(live_server.url.rsplit(":", 1)[1])
    farm = lan.FarmLan(port, tmp_path_factory.mktemp("lan"))
    try:
        farm.start()
    except lan.LanUnavailable as exc:
        farm.close()
        pytest.skip(str(exc))
    except BaseException:
        farm.close()
        raise
    try:
        yield farm
    finally:
        farm.close()


@pytest.fixture
def service(farm_lan, settings, test_kernel):
    """The live service as the LAN sees it, booting Debian's kernel on the `test` network."""
    settings.ZOSBOOT_PUBLIC_URL = lan.SERVICE_URL
    settings.ZOSBOOT_MIRRORS = []
    settings.ZOSBOOT_NTP_SERVER = ""
    settings.ALLOWED_HOSTS = [lan.SERVICE, "localhost", "127.0.0.1", "testserver"]
    kernel, _ = register(test_kernel, "debian-vmlinuz.efi")
    network, _ = Network.objects.get_or_create(slug="test", defaults={"name": "Testnet"})
    network.switch_kernel(kernel)
    return farm_lan


def unpack(path: str) -> Path:
    """Download a kit as a farmer does and unpack it the README's way (as root, readable by
    everyone); the kit's folder."""
    response = Client().get(path)
    assert response.status_code == 200, response.content[:300]
    where = lan.world_readable_dir("zosboot-kit-")
    archive = where / "kit.tar.gz"
    archive.write_bytes(b"".join(response.streaming_content))
    subprocess.run(["tar", "-xzf", str(archive), "-C", str(where)], check=True, timeout=30)
    (folder,) = [p for p in where.iterdir() if p.is_dir()]
    return folder


@pytest.fixture
def start_kit(service):
    """Start a downloaded kit's run.sh on the LAN's kit machine; stopped after the test."""
    started = []

    def start(path: str = KIT_PATH) -> tuple[Path, lan.Process]:
        folder = unpack(path)
        process = service.start_process("kit", "kit", [str(folder / "run.sh")])
        started.append((folder, process))
        process.wait_for("TFTP root is")
        return folder, process

    yield start
    for folder, process in started:
        process.stop()
        subprocess.run(["rm", "-rf", str(folder.parent)], check=False)


PROBE = Path(__file__).with_name("pxe_probe.py")


def probe(farm_lan: lan.FarmLan, *args: str) -> dict:
    """Run the DHCP/TFTP probe on the LAN's probe machine (a program of the standard library
    alone, so it runs by its path)."""
    result = farm_lan.run("probe", [sys.executable, str(PROBE), *args], timeout=30)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- the kit on the wire --------------------------------------------------------------------


def test_each_firmware_kind_gets_its_ipxe_over_tftp_and_ipxe_gets_the_farms_script(
    service, start_kit
):
    folder, kit = start_kit()
    assert f"on eth0 ({lan.KIT})" in kit.output()
    for arch, expected in FIRMWARE_FILES.items():
        mac = f"52:54:00:00:77:{arch:02x}"
        seen = probe(service, "boot", "eth0", mac, str(arch), lan.PROBE, "--listen", "6",
                     "--offers", "2")  # fmt: skip
        offers = {offer["server_id"]: offer for offer in seen["offers"]}
        # The router leases an address and names no boot file; the kit only adds PXE.
        router, proxy = offers[lan.ROUTER], offers[lan.KIT]
        assert router["yiaddr"].startswith("192.168.77.") and router["file"] == ""
        assert router["vendor_class"] == ""
        assert proxy["yiaddr"] == "0.0.0.0" and proxy["vendor_class"] == "PXEClient"
        # Port 4011: the firmware kind's own iPXE, from the kit's TFTP server.
        answer = seen["answer"]
        assert answer is not None, f"no answer on port 4011 for arch {arch}"
        assert (answer["file"], answer["siaddr"]) == (expected, lan.KIT), (arch, answer)
        fetched = probe(service, "tftp", lan.KIT, expected)
        assert fetched["sha256"] == sha256(folder / "tftp" / expected), (arch, fetched)

    # iPXE (user class iPXE, option 175) is given the farm's script, with the kit as the
    # server (iPXE ignores a proxy answer without one), and no menu that would reload iPXE.
    seen = probe(service, "boot", "eth0", "52:54:00:00:77:ee", "7", lan.PROBE, "--ipxe",
                 "--listen", "6", "--offers", "2")  # fmt: skip
    proxy = next(offer for offer in seen["offers"] if offer["server_id"] == lan.KIT)
    for answer in (proxy, seen["answer"]):
        assert answer["file"] == SCRIPT_URL
        assert answer["siaddr"] == lan.KIT
        assert answer["menu"] == []

    # The TFTP root: autoexec.ipxe as unpacked, nothing outside the tftp folder.
    fetched = probe(service, "tftp", lan.KIT, "autoexec.ipxe")
    assert fetched["sha256"] == sha256(folder / "tftp" / "autoexec.ipxe")
    assert "error" in probe(service, "tftp", lan.KIT, "../dnsmasq.conf")
    # The kit's dnsmasq answers as nobody, not root.
    # run.sh ends by exec-ing dnsmasq, so the kit's process is dnsmasq.
    owner = subprocess.run(
        ["ps", "-o", "user=,comm=", "-p", str(kit.popen.pid)],
        capture_output=True, text=True, check=False,
    ).stdout.split()  # fmt: skip
    assert owner == ["nobody", "dnsmasq"], owner


def test_run_sh_says_in_one_line_what_stops_it(service, start_kit, tmp_path):
    folder, _kit = start_kit()
    run_sh = str(folder / "run.sh")

    def refused(role: str, *args: str, env: dict | None = None) -> str:
        argv = [*(["env", *[f"{k}={v}" for k, v in env.items()]] if env else []), run_sh, *args]
        result = service.run(role, argv, timeout=30)
        assert result.returncode == 1, result
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("run.sh: "), result.stderr
        return lines[0]

    # A second kit on the same machine: its ports are taken.
    assert re.search(r"UDP port (67|69|4011) is taken by dnsmasq, pid \d+", refused("kit"))
    # A second kit on another machine of the LAN: the first one answers already.
    assert f"another PXE server already answers on eth0 ({lan.KIT})" in refused("probe", "eth0")
    # The probe machine has no default route to find the LAN by, and no such interface.
    assert "no default route" in refused("probe")
    assert "no network interface eth9" in refused("probe", "eth9")
    # Not root.
    result = service.run("probe", ["runuser", "-u", "nobody", "--", run_sh, "eth0"])
    assert result.returncode == 1 and "run it as root" in result.stderr
    # A dnsmasq known to misroute port-4011 answers.
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "dnsmasq").write_text("#!/bin/sh\necho 'Dnsmasq version 2.92  Copyright (c)'\n")
    (fake / "dnsmasq").chmod(0o755)
    message = refused("probe", "eth0", env={"PATH": f"{fake}:{os.environ['PATH']}"})
    assert "dnsmasq 2.92" in message and "2.93" in message
    # Files dnsmasq (as nobody) could not read.
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    subprocess.run(["cp", "-a", str(folder), str(private)], check=True)
    result = service.run("probe", [str(private / folder.name / "run.sh"), "eth0"])
    assert result.returncode == 1 and "nobody, who cannot read" in result.stderr, result


def test_run_sh_will_not_start_beside_a_router_that_hands_out_a_boot_file(service):
    folder = unpack(KIT_PATH)
    # A DHCP server on the probe machine that names a boot file, as a router set up for
    # PXE would (on a range of its own, so both servers answer).
    other = service.start_process(
        "dhcp with a boot file", "probe",
        ["dnsmasq", "--no-daemon", "--conf-file=/dev/null", "--port=0", "--interface=eth0",
         "--bind-interfaces", "--leasefile-ro", "--pid-file=", "--no-ping",
         "--dhcp-range=192.168.77.200,192.168.77.210,255.255.255.0,1h",
         "--dhcp-boot=pxelinux.0"],
    )  # fmt: skip
    try:
        other.wait_for("sockets bound exclusively")
        result = service.run("kit", [str(folder / "run.sh")], timeout=30)
    finally:
        other.stop()
        subprocess.run(["rm", "-rf", str(folder.parent)], check=False)
    assert result.returncode == 1, result
    assert f"the DHCP server {lan.PROBE} already hands out a boot file (pxelinux.0)" in (
        result.stderr
    ), result.stderr


# --- machines booting from their network card -----------------------------------------------


BOOT_STEPS = re.compile(
    r"PXE|NBP|Server IP|Station IP|iPXE|autoexec|Next server|Filename|Configuring|http://"
    r"|[Cc]ommand line:"
)


def pxe_boot(
    farm_lan: lan.FarmLan, firmware: str, nic: str, nic_rom: bool, mac: str, tmp_path,
    kernel: str = "debian-vmlinuz.efi",
):  # fmt: skip
    card = qemu.LanCard(farm_lan.add_tap(), farm_lan.lan, nic_rom=nic_rom)
    arm64 = firmware == "uefi-arm64"
    expect = qemu.ARM64_KERNEL_COMMAND_LINE if arm64 else qemu.KERNEL_COMMAND_LINE
    result = qemu.boot(
        qemu.NetworkBoot(), firmware=firmware, lan=card, nic=nic, mac=mac, expect=expect,
        # TCG emulates every arm64 instruction: firmware, iPXE and a 27 MB download.
        timeout=420 if arm64 else 240, memory_mb=1024 if arm64 else qemu.DEFAULT_MEMORY_MB,
        workdir=tmp_path,
    )  # fmt: skip
    assert qemu.kernel_cmdline(result.log, expect), result.log[-3000:]
    # The kernel came from the service, through the LAN's relay.
    assert BootEvent.objects.filter(kind="kernel", kernel_name=kernel).exists()
    # The way there, for whoever reads the test's output (pytest -s).
    print(f"\n{firmware} PXE boot ({nic}): {result.seconds:.1f} s to the kernel's command line")
    for line in qemu.tail(result.log[: result.match.end()], lines=1000).splitlines():
        if BOOT_STEPS.search(line):
            print(f"  {line}")
    return result


def test_uefi_firmware_pxe_boots_the_farm_through_snponly_and_the_tftp_autoexec(
    service, start_kit, tmp_path
):
    _folder, kit = start_kit()
    # virtio-net without ROM: OVMF's own driver and PXE, never QEMU's iPXE.
    result = pxe_boot(service, "uefi", "virtio-net-pci", False, "52:54:00:77:00:07", tmp_path)
    assert "Start PXE over IPv4" in result.log
    assert "NBP filename is snponly.efi" in result.log
    assert f"Server IP address is {lan.KIT}" in result.log
    assert "autoexec.ipxe... ok" in result.log
    assert f"runmode=test panic=7200 farmer_id={FARM}" in result.kernel_cmdline
    assert MARKER in result.kernel_cmdline
    log = kit.output()
    assert "snponly.efi to 192.168.77." in log and "autoexec.ipxe to 192.168.77." in log


def test_bios_pxe_boots_the_farm_with_the_script_url_from_the_kit(service, start_kit, tmp_path):
    _folder, kit = start_kit()
    # e1000 with QEMU's own ROM: SeaBIOS boots the card's iPXE, which asks DHCP as iPXE.
    result = pxe_boot(service, "bios", "e1000", True, "52:54:00:77:00:00", tmp_path)
    assert f"Next server: {lan.KIT}" in result.log
    assert f"Filename: {SCRIPT_URL}" in result.log
    assert f"runmode=test panic=7200 farmer_id={FARM}" in result.kernel_cmdline
    assert MARKER in result.kernel_cmdline
    assert "52:54:00:77:00:00 proxy" in kit.output()


def test_arm64_uefi_firmware_pxe_boots_the_farm_through_the_kits_arm64_ipxe(
    service, start_kit, tmp_path, arm64_test_kernel
):
    kernel, _ = register(arm64_test_kernel, "debian-vmlinuz-arm64.efi", arch="arm64")
    Network.objects.get(slug="test").switch_kernel(kernel, arch=Arch.ARM64)
    # The same kind of kit, with the console an arm64 server has.
    extra = "console=ttyAMA0 zos.case=pxe-kit-arm64"
    _folder, kit = start_kit(f"/pxe-kit/test/{FARM}/" + quote(extra, safe=""))
    # virtio-net without ROM: AAVMF's own driver and PXE (client architecture 11).
    result = pxe_boot(
        service, "uefi-arm64", "virtio-net-pci", False, "52:54:00:77:00:0b", tmp_path,
        kernel="debian-vmlinuz-arm64.efi",
    )  # fmt: skip
    assert "NBP filename is ipxe-arm64.efi" in result.log, result.log[-3000:]
    cmdline = qemu.kernel_cmdline(result.log, qemu.ARM64_KERNEL_COMMAND_LINE) or ""
    assert f"runmode=test panic=7200 farmer_id={FARM}" in cmdline, cmdline
    assert extra in cmdline, cmdline
    # The PC kernel beside it was not what this machine downloaded.
    downloads = BootEvent.objects.filter(kind="kernel").values_list("kernel_name", flat=True)
    assert set(downloads) == {"debian-vmlinuz-arm64.efi"}
    assert "ipxe-arm64.efi to 192.168.77." in kit.output()


@pytest.mark.parametrize(
    ("firmware", "nic", "nic_rom", "mac", "asked"),
    [
        # UEFI: snponly.efi runs the TFTP autoexec.ipxe, which adds each card's MAC.
        ("uefi", "virtio-net-pci", False, "52:54:00:77:00:98", "/provision/52:54:00:77:00:98"),
        # BIOS: iPXE fills in ${netX/mac:hexhyp} in the file name of the kit's DHCP answer.
        ("bios", "e1000", True, "52:54:00:77:00:99", "/provision/52-54-00-77-00-99"),
    ],
    ids=["uefi", "bios"],
)
def test_the_provisioning_kit_boots_each_node_by_its_mac(
    service, start_kit, tmp_path, firmware, nic, nic_rom, mac, asked
):
    farm = Farm.objects.create(farmer_id=777, name="Provisioned farm")
    node = Node.objects.create(
        mac=mac,
        farm=farm,
        network=Network.objects.get(slug="test"),
        extra_args="console=ttyS0 zos.case=pxe-kit-provision",
    )
    start_kit("/pxe-kit-provision")
    result = pxe_boot(service, firmware, nic, nic_rom, mac, tmp_path)
    assert f"{lan.SERVICE_URL}{asked}" in result.log
    assert "runmode=test panic=7200 farmer_id=777" in result.kernel_cmdline
    assert "zos.case=pxe-kit-provision" in result.kernel_cmdline
    node.refresh_from_db()
    assert node.boot_count == 1
