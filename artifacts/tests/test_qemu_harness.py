"""Fast checks of the QEMU boot harness's pure parts (no QEMU is started).

The network rule matters most: a boot test's guest must reach nothing but the test server
on 127.0.0.1, so the generated command line is pinned down here.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from artifacts.tests import qemu

LOG = Path("/tmp/serial.log")


def _argv(media: qemu.Media | None = None, **kwargs: object) -> list[str]:
    media = media or qemu.DirectKernel(Path("/x/ipxe.lkrn"), initrd=Path("/x/boot.ipxe"))
    return qemu.qemu_command(media, http_port=8123, serial_log=LOG, **kwargs)  # type: ignore[arg-type]


def _values(argv: list[str], flag: str) -> list[str]:
    return [argv[i + 1] for i, arg in enumerate(argv) if arg == flag]


@pytest.mark.parametrize("firmware", ["bios", "uefi", "uefi-arm64"])
def test_network_is_restricted_to_one_forward_to_loopback(firmware: str) -> None:
    argv = _argv(firmware=firmware)
    (netdev,) = _values(argv, "-netdev")
    assert netdev == (
        "user,id=n0,restrict=on,guestfwd=tcp:10.0.2.100:80-cmd:socat - TCP:127.0.0.1:8123"
    )
    # One NIC, on that netdev, without QEMU's own iPXE ROM; no other network of any kind.
    (nic,) = [d for d in _values(argv, "-device") if "netdev=" in d]
    assert nic == "e1000,netdev=n0,mac=52:54:00:12:34:56,romfile="
    assert "-nodefaults" in argv
    assert not {"-net", "-nic"} & set(argv)
    addresses = set(re.findall(r"\b\d+\.\d+\.\d+\.\d+\b", " ".join(argv)))
    assert addresses == {"10.0.2.100", "127.0.0.1"}


def test_dead_cards_come_first_and_reach_nothing() -> None:
    argv = _argv(dead_nics=("52:54:00:00:00:01",))
    assert _values(argv, "-netdev") == [
        "user,id=d0,restrict=on",
        "user,id=n0,restrict=on,guestfwd=tcp:10.0.2.100:80-cmd:socat - TCP:127.0.0.1:8123",
    ]
    nics = [d for d in _values(argv, "-device") if "netdev=" in d]
    assert nics == [
        "e1000,netdev=d0,mac=52:54:00:00:00:01,romfile=",
        "e1000,netdev=n0,mac=52:54:00:12:34:56,romfile=",
    ]
    with pytest.raises(ValueError, match="invalid MAC"):
        _argv(dead_nics=("52:54:00:00:00:01,hostfwd=tcp::22-:22",))


@pytest.mark.parametrize("nic_rom", [False, True])
def test_a_guest_on_a_test_lan_has_only_its_tap_and_runs_in_the_lans_namespace(nic_rom) -> None:
    card = qemu.LanCard("tap0", "zosk1-lan", nic_rom=nic_rom)
    argv = qemu.qemu_command(
        qemu.NetworkBoot(), firmware="uefi", http_port=None, serial_log=LOG, lan=card,
        nic="virtio-net-pci",
    )  # fmt: skip
    assert argv[:5] == ["ip", "netns", "exec", "zosk1-lan", "qemu-system-x86_64"]
    assert _values(argv, "-netdev") == ["tap,id=n0,ifname=tap0,script=no,downscript=no"]
    (nic,) = [d for d in _values(argv, "-device") if "netdev=" in d]
    # Without a ROM the firmware's own PXE drives the card; with one, QEMU's iPXE does.
    rom = "" if nic_rom else ",romfile="
    assert nic == f"virtio-net-pci,netdev=n0,mac=52:54:00:12:34:56{rom}"
    assert _values(argv, "-boot") == ["order=n"]
    assert not re.findall(r"\b\d+\.\d+\.\d+\.\d+\b", " ".join(argv))


def test_lan_cards_refuse_names_that_could_smuggle_options() -> None:
    with pytest.raises(ValueError, match="invalid interface or namespace"):
        qemu.LanCard("tap0,script=/tmp/x", "zosk1-lan")
    with pytest.raises(ValueError, match="needs the test server"):
        qemu.qemu_command(qemu.NetworkBoot(), http_port=None, serial_log=LOG)


def test_firmware_selection() -> None:
    bios, uefi = _argv(firmware="bios"), _argv(firmware="uefi")
    assert _values(bios, "-machine") == ["pc,accel=tcg,graphics=off"]
    assert "-bios" not in bios
    assert _values(uefi, "-machine") == ["q35,accel=tcg,graphics=off"]
    assert _values(uefi, "-bios") == ["/usr/share/ovmf/OVMF.fd"]
    with pytest.raises(ValueError):
        _argv(firmware="coreboot")


def test_option_values_escape_commas() -> None:
    assert qemu.qemu_escape("a,b,,c") == "a,,b,,,,c"
    argv = _argv(qemu.Cdrom(Path("/img/zos,prod.iso")))
    assert "if=none,id=boot0,format=raw,file=/img/zos,,prod.iso,media=cdrom,readonly=on" in argv
    argv = _argv(qemu.EspDir(Path("/tmp/esp,1")))
    assert "if=none,id=boot0,format=raw,file=fat:/tmp/esp,,1,snapshot=on" in argv


def test_media_attach_as_first_boot_device() -> None:
    usb = _argv(qemu.UsbStick(Path("/img/usb.img")))
    assert "qemu-xhci,id=xhci" in usb
    assert "usb-storage,bus=xhci.0,drive=boot0,removable=on,bootindex=0" in usb
    assert "ide-hd,drive=boot0,bootindex=0" in _argv(qemu.Disk(Path("/img/uefi.img")))
    direct = _argv(qemu.DirectKernel(Path("/k"), append="dhcp && chain http://10.0.2.100/x"))
    assert _values(direct, "-kernel") == ["/k"]
    assert _values(direct, "-append") == ["dhcp && chain http://10.0.2.100/x"]
    assert "-initrd" not in direct


@pytest.mark.parametrize("bad", [{"mac": "52:54:00:12:34"}, {"mac": "x,hostfwd=tcp::1-:2"}])
def test_rejects_values_that_could_smuggle_options(bad: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        _argv(**bad)
    with pytest.raises(ValueError):
        qemu.relay_command(0)


SEABIOS_LOG = (
    "\x1bc\x1b[?7l\x1b[2J\x1b[0mSeaBIOS (version 1.16.2)\r\n"
    "http://10.0.2.100/vmlinuz... ok\r\n"
    "Probing EDD (edd=off to disable)... o\x1bc\x1b[?7l\x1b[2J"
    "[    0.000000] Linux version 6.1.0-56-cloud-amd64\r\n"
    "[    0.000000] Command line: console=ttyS0 runmode=test farmer_id=42 zosmarker\r\n"
    "[    0.120000] Kernel command line: console=ttyS0 runmode=test\r\n"
)


def test_kernel_cmdline_reads_the_kernels_own_line() -> None:
    assert qemu.kernel_cmdline(SEABIOS_LOG) == "console=ttyS0 runmode=test farmer_id=42 zosmarker"
    # Under UEFI iPXE passes the image name first.
    uefi = "http://10.0.2.100/vmlinuz... ok\r\n[    0.000000] Command line: vmlinuz a=1\r\n"
    assert qemu.kernel_cmdline(uefi) == "vmlinuz a=1"
    assert qemu.kernel_cmdline("iPXE 1.21.1\r\nKernel command line: late only\r\n") is None
    assert qemu.kernel_cmdline("") is None


def test_log_tail_is_readable() -> None:
    text = qemu.tail(SEABIOS_LOG, lines=3)
    assert "\x1b" not in text
    lines = text.splitlines()
    assert (
        lines[0]
        == "Probing EDD (edd=off to disable)... o[    0.000000] Linux version 6.1.0-56-cloud-amd64"
    )
    assert lines[-1] == "[    0.120000] Kernel command line: console=ttyS0 runmode=test"


def test_firmware_gave_up_pattern() -> None:
    assert qemu.FIRMWARE_GAVE_UP.search("No bootable device.  Retrying in 60 seconds.")
    assert qemu.FIRMWARE_GAVE_UP.search('BdsDxe: loading Boot0000 "UiApp" from Fv(7CB8)')
    assert not qemu.FIRMWARE_GAVE_UP.search('BdsDxe: loading Boot0001 "UEFI QEMU HARDDISK"')


def test_boot_retries_only_when_the_firmware_gave_up(monkeypatch):
    calls = []
    outcomes = [qemu.BootFailed("boot failed: UiApp", "log one"), "ok"]

    def once(*args, **kwargs):
        calls.append(1)
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return qemu.BootResult(match=re.search("x", "x"), log="log two", seconds=1.0)

    monkeypatch.setattr(qemu, "_boot_once", once)
    result = qemu.boot(qemu.Cdrom(Path("/x.iso")), http_port=8000)
    assert len(calls) == 2 and result.retried == ("log one",)


def test_an_image_the_firmware_never_boots_fails_after_the_attempts(monkeypatch):
    def once(*args, **kwargs):
        raise qemu.BootFailed("boot failed: UiApp", "same log")

    monkeypatch.setattr(qemu, "_boot_once", once)
    with pytest.raises(qemu.BootFailed, match="attempt 2 of 2"):
        qemu.boot(qemu.Cdrom(Path("/x.iso")), http_port=8000)


def test_timeouts_are_not_retried(monkeypatch):
    calls = []

    def once(*args, **kwargs):
        calls.append(1)
        raise qemu.BootTimeout("no match", "log")

    monkeypatch.setattr(qemu, "_boot_once", once)
    with pytest.raises(qemu.BootTimeout):
        qemu.boot(qemu.Cdrom(Path("/x.iso")), http_port=8000)
    assert len(calls) == 1


def test_arm64_machines_are_qemus_virt_board_with_aavmf() -> None:
    argv = _argv(qemu.ScsiCdrom(Path("/x/zos.iso")), firmware="uefi-arm64")
    assert argv[0] == "qemu-system-aarch64"
    assert _values(argv, "-machine") == ["virt,accel=tcg"]
    assert _values(argv, "-bios") == [str(qemu.AAVMF_PATH)]
    assert "scsi-cd,bus=scsi0.0,drive=boot0,bootindex=0" in _values(argv, "-device")
    assert "-no-reboot" in argv and "-nodefaults" in argv


def test_the_arm64_kernels_command_line_is_read_from_its_generic_line() -> None:
    log = (
        "EFI stub: Booting Linux Kernel...\r\n"
        "[    0.000000] Kernel command line: zos console=ttyAMA0 runmode=test\r\n"
    )
    assert qemu.kernel_cmdline(log) is None  # the x86 kernel's early line is not there
    assert qemu.kernel_cmdline(log, qemu.ARM64_KERNEL_COMMAND_LINE) == (
        "zos console=ttyAMA0 runmode=test"
    )
