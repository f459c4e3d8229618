"""Boot a QEMU guest from zosboot's media and watch its serial console.

Why this exists: a unit test can check that zosboot renders the right iPXE script and
builds a well-formed image, but only a boot shows that firmware + iPXE + script + kernel
actually fit together. The strongest proof is the booted Linux kernel printing its own
``Command line:`` on the serial port with the parameters zosboot rendered in it.

Constraints this module is built around:

- TCG only (no usable /dev/kvm), so boots take seconds to tens of seconds; timeouts are
  generous but :func:`boot` returns as soon as the expected output appears.
- Strict network isolation: the guest gets QEMU user networking with ``restrict=on`` and a
  single forward, ``10.0.2.100:80`` -> a relay to ``127.0.0.1:<http_port>``. The guest
  reaches the test server as :data:`GUEST_URL` and can reach nothing else.
- QEMU's own iPXE option ROM is disabled on the NIC (``romfile=``), so the iPXE that runs
  is the one on the media under test, never the one QEMU ships.
- A guest on a test's own LAN (``lan=LanCard(...)``: a tap in a network namespace the test
  made, QEMU started inside it) has no user network at all: it reaches what that LAN holds
  and nothing else. Its firmware boots from the network card (:class:`NetworkBoot`): OVMF's
  own PXE on a card without ROM, or QEMU's iPXE ROM under SeaBIOS (``nic_rom=True``).
- arm64 machines (``firmware="uefi-arm64"``): ``qemu-system-aarch64 -M virt`` with Debian's
  AAVMF firmware (``qemu-efi-aarch64``), same network rule, same e1000 card (Debian's arm64
  iPXE drives it; AAVMF has no driver for it, so iPXE owns it). The virt machine has no IDE:
  its media are :class:`ScsiCdrom` and :class:`UsbStick`.

No Django imports: the module is plain Python so it can be unit tested and reused.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from .media import (  # noqa: F401  (the media are part of this harness's interface)
    Cdrom,
    DirectKernel,
    Disk,
    EspDir,
    Media,
    ScsiCdrom,
    UsbStick,
    grub_bios_cd,
    grub_bios_cd_lkrn,
    isolinux_cd_lkrn,
    qemu_escape,
)

Firmware = Literal["bios", "uefi", "uefi-arm64"]

#: Address the guest uses for the test HTTP server; it exists only inside QEMU's
#: user-mode network and is forwarded to 127.0.0.1 on the host.
GUEST_SERVER = "10.0.2.100"
GUEST_URL = f"http://{GUEST_SERVER}"

#: OVMF as packaged by Debian bookworm's ``ovmf`` (2 MB image with code and variables;
#: ``-bios`` loads it read-only, so every boot starts from pristine NVRAM).
OVMF_PATH = Path("/usr/share/ovmf/OVMF.fd")
#: SeaBIOS image QEMU's ``pc`` machine loads (Debian's qemu searches /usr/share/seabios).
SEABIOS_PATH = Path("/usr/share/seabios/bios-256k.bin")
#: AAVMF (EDK II for arm64 virtual machines) as packaged by Debian's ``qemu-efi-aarch64``;
#: ``-bios`` loads it with volatile variables, so every boot starts pristine.
AAVMF_PATH = Path("/usr/share/qemu-efi-aarch64/QEMU_EFI.fd")
#: A plain ARMv8.0 core: Debian's arm64 kernel needs no more, and TCG emulates it faster than
#: ``max`` (whose pointer authentication is slow to emulate).
ARM64_CPU = "cortex-a57"

#: e1000 is driven by Debian's iPXE under both firmwares and, unlike virtio-net, is not
#: claimed by OVMF's built-in network driver first, so iPXE owns the NIC from the start.
DEFAULT_NIC = "e1000"
DEFAULT_MAC = "52:54:00:12:34:56"
DEFAULT_TIMEOUT = 120.0
DEFAULT_MEMORY_MB = 512

#: The x86 kernel prints "Command line: ..." early in setup_arch(); the later generic line
#: is "Kernel command line: ..." (lower-case c), which this does not match. Default expect.
KERNEL_COMMAND_LINE = re.compile(r"\bCommand line: ?([^\r\n]*)")
#: The arm64 kernel prints only the generic line, when its console comes up.
ARM64_KERNEL_COMMAND_LINE = re.compile(r"\bKernel command line: ?([^\r\n]*)")
#: The firmware ran out of things to boot: SeaBIOS says so (then waits 60 s to reboot),
#: OVMF falls back to its setup menu or shell instead of rebooting. Default fail pattern,
#: so a broken boot fails in seconds instead of waiting for the timeout.
FIRMWARE_GAVE_UP = re.compile(
    r'No bootable device|BdsDxe: loading Boot[0-9A-F]+ "(UiApp|EFI Internal Shell)"'
)

_MAC_RE = re.compile(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,40}$")
# Terminal control sequences firmware and iPXE put on the serial console (colours, cursor
# moves, resets); stripped from error messages only, the log itself stays raw.
_ANSI_RE = re.compile(r"\x1b(\[[0-9;?=]*[ -/]*[@-~]|[@-Z\\-_]|c)")


class GuestError(RuntimeError):
    """The guest did not show the expected output; the message ends with the log tail."""

    def __init__(self, message: str, log: str) -> None:
        super().__init__(f"{message}\n--- last serial output ---\n{tail(log)}")
        self.log = log


class BootTimeout(GuestError):
    """The expected output did not appear within the timeout."""


class BootFailed(GuestError):
    """The serial console matched the ``fail`` pattern (by default: firmware gave up)."""


class QemuExited(GuestError):
    """QEMU stopped (bad option, guest reboot with -no-reboot, ...) before the match."""


def tail(log: str, lines: int = 40) -> str:
    """Return the last non-blank lines of a serial log without terminal escapes.

    For error messages that fit on a screen and read well in a pytest report.
    """
    text = _ANSI_RE.sub("", log)
    kept = [line.rstrip() for line in text.splitlines() if line.strip()]
    return "\n".join(kept[-lines:])


def kernel_cmdline(log: str, pattern: re.Pattern[str] = KERNEL_COMMAND_LINE) -> str | None:
    """Return the command line the Linux kernel itself reports, or None if not booted.

    This is the proof a boot test wants: the text after the kernel's early
    ``Command line:`` message (``ARM64_KERNEL_COMMAND_LINE`` for an arm64 kernel), i.e. what
    iPXE really handed to the kernel.
    """
    match = pattern.search(log)
    return match.group(1).strip() if match else None


def relay_command(http_port: int) -> str:
    """The program QEMU spawns for each guest connection to 10.0.2.100:80.

    One process per connection: a ``guestfwd=...-tcp:`` target instead opens a single
    connection when QEMU starts and breaks as soon as the server closes it.
    """
    return f"socat - TCP:127.0.0.1:{_check_port(http_port)}"


def netdev_arg(http_port: int, servers: dict[str, int] | None = None) -> str:
    """The ``-netdev`` value: DHCP from QEMU, no outside access, one forward to the host at
    GUEST_SERVER, and one more per entry of ``servers`` (another guest address of the
    10.0.2.0/24 network -> another port on the host's 127.0.0.1)."""
    forwards = {GUEST_SERVER: http_port, **(servers or {})}
    value = "user,id=n0,restrict=on"
    for address, port in forwards.items():
        if not _GUEST_ADDRESS_RE.fullmatch(address):
            raise ValueError(f"invalid guest server address: {address!r}")
        value += f",guestfwd=tcp:{address}:80-cmd:{qemu_escape(relay_command(port))}"
    return value


_GUEST_ADDRESS_RE = re.compile(r"10\.0\.2\.(1[0-9][0-9]|2[0-4][0-9])")


@dataclass(frozen=True)
class LanCard:
    """The guest's network card on a tap of a test's own LAN instead of QEMU's user network.

    ``netns`` is the network namespace that holds ``tap`` (QEMU runs inside it, so the guest
    reaches nothing else); ``nic_rom`` keeps QEMU's iPXE ROM on the card (SeaBIOS network
    boot), otherwise the card has none and UEFI firmware uses its own PXE.
    """

    tap: str
    netns: str
    nic_rom: bool = False

    def __post_init__(self) -> None:
        for name in (self.tap, self.netns):
            if not _NAME_RE.match(name):
                raise ValueError(f"invalid interface or namespace name: {name!r}")


@dataclass(frozen=True)
class NetworkBoot:
    """No medium: the firmware boots from the network card (PXE)."""

    def qemu_args(self) -> list[str]:
        return ["-boot", "order=n"]


def _check_port(port: int) -> int:
    if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
        raise ValueError(f"invalid TCP port: {port!r}")
    return port


def qemu_command(
    media: Media,
    *,
    firmware: Firmware = "bios",
    http_port: int | None,
    serial_log: Path,
    mac: str = DEFAULT_MAC,
    nic: str = DEFAULT_NIC,
    memory_mb: int = DEFAULT_MEMORY_MB,
    dead_nics: tuple[str, ...] = (),
    servers: dict[str, int] | None = None,
    lan: LanCard | None = None,
) -> list[str]:
    """Build the full QEMU argv (pure: no process is started, so it is unit testable).

    ``dead_nics`` are the MACs of cards placed before the working one (so iPXE tries them
    first): they get an address by DHCP but reach nothing at all, not even the test server.
    With ``lan`` the card is on that LAN's tap and QEMU runs in its namespace; ``http_port``
    is then not used (the LAN decides what the guest reaches).
    """
    for address in (mac, *dead_nics):
        if not _MAC_RE.match(address):
            raise ValueError(f"invalid MAC address: {address!r}")
    dead = []
    for index, address in enumerate(dead_nics):
        dead += ["-netdev", f"user,id=d{index},restrict=on"]
        dead += ["-device", f"{nic},netdev=d{index},mac={address},romfile="]
    # graphics=off makes SeaBIOS mirror its text console (and so iPXE's messages) to the
    # serial port, so a failing BIOS boot log shows what iPXE said; OVMF does so anyway.
    system = "qemu-system-x86_64"
    if firmware == "bios":
        machine = ["-machine", "pc,accel=tcg,graphics=off"]
    elif firmware == "uefi":
        machine = ["-machine", "q35,accel=tcg,graphics=off", "-bios", str(OVMF_PATH)]
    elif firmware == "uefi-arm64":
        system = "qemu-system-aarch64"
        machine = ["-machine", "virt,accel=tcg", "-cpu", ARM64_CPU, "-bios", str(AAVMF_PATH)]
    else:
        raise ValueError(
            f"unknown firmware: {firmware!r} (expected 'bios', 'uefi' or 'uefi-arm64')"
        )
    if lan is None:
        if http_port is None:
            raise ValueError("a guest on QEMU's user network needs the test server's port")
        netdev = netdev_arg(http_port, servers)
        rom = ",romfile="
        prefix = []
    else:
        netdev = f"tap,id=n0,ifname={lan.tap},script=no,downscript=no"
        rom = "" if lan.nic_rom else ",romfile="
        prefix = ["ip", "netns", "exec", lan.netns]
    return [
        *prefix,
        system,
        *machine,
        "-m", str(memory_mb),
        # No default NIC (it would not be restricted), VGA, floppy or monitor.
        "-nodefaults",
        "-display", "none",
        # A chardev "file:" path is taken verbatim (no option parsing, so no escaping).
        "-serial", f"file:{serial_log}",
        # A reboot means the boot failed (iPXE gave up, kernel panic): stop at once.
        "-no-reboot",
        *dead,
        "-netdev", netdev,
        "-device", f"{nic},netdev=n0,mac={mac}{rom}",
        *media.qemu_args(),
    ]  # fmt: skip


@dataclass(frozen=True)
class BootResult:
    """What a successful boot showed: the match, the whole serial log, the time taken."""

    match: re.Match[str]
    log: str
    seconds: float
    #: Serial logs of earlier attempts the firmware gave up on (see ``boot``'s ``attempts``).
    retried: tuple[str, ...] = ()

    @property
    def kernel_cmdline(self) -> str | None:
        """The booted kernel's own command line, if the log got that far."""
        return kernel_cmdline(self.log)


def boot(
    media: Media,
    *,
    firmware: Firmware = "bios",
    http_port: int | None = None,
    expect: str | re.Pattern[str] = KERNEL_COMMAND_LINE,
    fail: str | re.Pattern[str] | None = FIRMWARE_GAVE_UP,
    timeout: float = DEFAULT_TIMEOUT,
    mac: str = DEFAULT_MAC,
    nic: str = DEFAULT_NIC,
    memory_mb: int = DEFAULT_MEMORY_MB,
    workdir: Path | None = None,
    attempts: int = 2,
    dead_nics: tuple[str, ...] = (),
    servers: dict[str, int] | None = None,
    lan: LanCard | None = None,
) -> BootResult:
    """Boot ``media`` until the serial console matches ``expect``; QEMU is always killed.

    The default ``expect`` waits for the Linux kernel's ``Command line:``; the caller
    usually asserts on ``result.kernel_cmdline`` afterwards. ``fail`` ends the wait early
    (e.g. a script's own error message). Raises :class:`BootTimeout`, :class:`BootFailed`
    or :class:`QemuExited` (all :class:`GuestError`, message ending with the log tail).
    The serial log is written to ``workdir`` (a temporary directory if None).

    Only when the *firmware* gives up (``fail`` matched) is the boot tried again, up to
    ``attempts`` times: under TCG on a loaded machine OVMF now and then enumerates a USB stick
    after its boot manager has looked, and falls back to its menu. An image that does not
    boot fails every attempt; the earlier logs are kept in ``BootResult.retried`` and in
    the error.
    """
    pattern = re.compile(expect) if isinstance(expect, str) else expect
    fail_pattern = re.compile(fail) if isinstance(fail, str) else fail
    command = functools.partial(
        qemu_command, media, firmware=firmware, http_port=http_port, mac=mac, nic=nic,
        memory_mb=memory_mb, dead_nics=dead_nics, servers=servers, lan=lan,
    )  # fmt: skip
    earlier: list[str] = []
    for attempt in range(1, max(1, attempts) + 1):
        try:
            result = _boot_once(command, pattern, fail_pattern, timeout, workdir)
        except BootFailed as exc:
            earlier.append(exc.log)
            if attempt >= attempts:
                first_line = str(exc).split("\n", 1)[0]
                raise BootFailed(
                    f"{first_line} (attempt {attempt} of {attempts})", exc.log
                ) from exc
            continue
        return dataclasses.replace(result, retried=tuple(earlier))
    raise AssertionError("unreachable")


def _boot_once(
    command: Callable[..., list[str]],
    pattern: re.Pattern[str],
    fail_pattern: re.Pattern[str] | None,
    timeout: float,
    workdir: Path | None,
) -> BootResult:
    """One QEMU run; ``command(serial_log=...)`` gives its argument list."""
    with tempfile.TemporaryDirectory(prefix="zosboot-qemu-") as tmp:
        log_path = Path(workdir or tmp) / "serial.log"
        log_path.write_bytes(b"")
        argv = command(serial_log=log_path)
        stderr_path = Path(tmp) / "qemu.stderr"
        started = time.monotonic()
        with open(stderr_path, "wb") as stderr:
            # Own process group, so the relays QEMU spawns die with it.
            proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=stderr, stderr=stderr,
                start_new_session=True,
            )  # fmt: skip
        try:
            return _watch(proc, pattern, fail_pattern, log_path, stderr_path, started, timeout)
        finally:
            _kill(proc)


def _watch(
    proc: subprocess.Popen[bytes],
    pattern: re.Pattern[str],
    fail: re.Pattern[str] | None,
    log_path: Path,
    stderr_path: Path,
    started: float,
    timeout: float,
) -> BootResult:
    """Poll the serial log until the pattern matches, QEMU exits or time runs out."""
    deadline = started + timeout
    while True:
        exited = proc.poll() is not None  # read the log after this, so nothing is lost
        log = log_path.read_bytes().decode("utf-8", errors="replace")
        match = pattern.search(log)
        if match:
            return BootResult(match=match, log=log, seconds=time.monotonic() - started)
        failed = fail.search(log) if fail else None
        if failed:
            raise BootFailed(f"boot failed: {failed.group(0)!r} on the serial console", log)
        if exited:
            stderr = stderr_path.read_text(errors="replace").strip()
            raise QemuExited(
                f"QEMU exited with {proc.returncode} before {pattern.pattern!r} appeared"
                + (f"\nQEMU said: {stderr}" if stderr else ""),
                log,
            )
        if time.monotonic() >= deadline:
            raise BootTimeout(f"no {pattern.pattern!r} on the serial console in {timeout} s", log)
        time.sleep(0.1)


def _kill(proc: subprocess.Popen[bytes]) -> None:
    """Kill QEMU's process group (QEMU and any relay it spawned) and reap QEMU."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=30)


def host_problems(firmwares: tuple[Firmware, ...] = ("bios", "uefi")) -> list[str]:
    """What the host lacks for boot tests, as install hints; empty when all is there.

    Tests call this to skip or fail with one clear message instead of a QEMU traceback.
    """
    problems = []
    if {"bios", "uefi"} & set(firmwares) and shutil.which("qemu-system-x86_64") is None:
        problems.append("qemu-system-x86_64 not found (apt-get install qemu-system-x86)")
    if "uefi-arm64" in firmwares:
        if shutil.which("qemu-system-aarch64") is None:
            problems.append("qemu-system-aarch64 not found (apt-get install qemu-system-arm)")
        if not AAVMF_PATH.is_file():
            problems.append(f"{AAVMF_PATH} not found (apt-get install qemu-efi-aarch64)")
    if shutil.which("socat") is None:
        problems.append("socat not found (apt-get install socat)")
    if "bios" in firmwares and not SEABIOS_PATH.is_file():
        problems.append(f"{SEABIOS_PATH} not found (apt-get install seabios)")
    if "uefi" in firmwares and not OVMF_PATH.is_file():
        problems.append(f"{OVMF_PATH} not found (apt-get install ovmf)")
    return problems
