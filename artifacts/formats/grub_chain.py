"""What the ``uefi`` download carries for iPXE: the memdisk (a tar of ``grub.cfg`` and
iPXE) whose ``grub.cfg`` chain-loads iPXE with the farm's script as its UEFI load options,
and the way back from a built image to that script. Why it is built this way:
:mod:`artifacts.formats.standalone_efi`."""

from __future__ import annotations

import io
import re
import tarfile

from .krn import tar_member
from .toolchain import BuildError

CFG_NAME = "boot/grub/grub.cfg"
IPXE_NAME = "ipxe.efi"
# The word iPXE drops from its load options as "the image name".
_IMAGE_WORD = "ipxe.efi"

# What a script may contain: printable ASCII, tab, CR, LF. GRUB widens each byte to one
# UCS-2 unit and iPXE narrows them back; UTF-8 text arrives as "?" (seen in QEMU), and NUL
# would end the load options early.
_ALLOWED = frozenset(b"\t\n\r" + bytes(range(0x20, 0x7F)))
# Recovers the script from the config (see :func:`extract_script`).
_SCRIPT_RE = re.compile(rb"^set zos_script='((?:[^']|'\\'')*)'\n", re.MULTILINE)


def _grub_quote(text: bytes) -> bytes:
    """Quote bytes as one GRUB word: single quotes keep everything literally but ``'``."""
    return b"'" + text.replace(b"'", b"'\\''") + b"'"


def render_grub_cfg(script: bytes) -> bytes:
    """The ``grub.cfg`` in the memdisk: chain-load iPXE with the script as load options.

    ``zos_script`` holds the script; ``"$zos_script"`` passes it as one argument after the
    image-name word. If iPXE returns (its script ended without booting), GRUB exits so the
    firmware moves on to its next boot option, as it would after a plain iPXE.
    """
    return b"".join([
        b"# zosboot: start iPXE (in this memdisk) and make it run the script below.\n",
        b"set zos_script=", _grub_quote(script), b"\n",
        # The device GRUB was loaded from, e.g. (hd0,gpt1) from "(hd0,gpt1)/EFI/BOOT", or
        # (http,10.0.0.1) when network-booted; a disk or CD goes first without partition.
        b"regexp --set=1:zos_dev '^(\\([^)]*\\))' \"$cmdpath\"\n",
        b"set zos_roots=\"$zos_dev\"\n",
        b"if regexp --set=1:zos_disk '^\\(([hc]d[0-9]+)[,)]' \"$cmdpath\"; then\n",
        b"  set zos_roots=\"($zos_disk) $zos_dev\"\n",
        b"fi\n",
        b"set zos_started=0\n",
        b"for zos_root in $zos_roots (*); do\n",
        b"  set root=\"$zos_root\"\n",
        b"  if chainloader (memdisk)/", IPXE_NAME.encode(), b" ", _IMAGE_WORD.encode(),
        b" \"$zos_script\"; then\n",
        b"    set zos_started=1\n",
        b"    boot\n",
        b"    break\n",
        b"  fi\n",
        b"done\n",
        b"if [ \"$zos_started\" = 0 ]; then\n",
        b"  echo \"zosboot: could not start iPXE from this image (loaded from '$cmdpath').\"\n",
        b"  echo \"zosboot: returning to the firmware in 20 seconds.\"\n",
        b"  sleep 20\n",
        b"fi\n",
        b"exit\n",
    ])  # fmt: skip


def check_script(script: bytes) -> None:
    """Raise BuildError unless the script can travel through GRUB to iPXE unchanged."""
    if not isinstance(script, bytes):
        raise BuildError("the iPXE script must be bytes")
    bad = sorted(set(script) - _ALLOWED)
    if bad:
        shown = ", ".join(f"0x{b:02x}" for b in bad[:5])
        raise BuildError(
            f"the iPXE script has bytes a UEFI load option cannot carry ({shown}); "
            "only printable ASCII, tab and line breaks can be embedded"
        )


def make_memdisk(script: bytes, ipxe_efi: bytes) -> bytes:
    """The memdisk tar: ``boot/grub/grub.cfg`` (first, so it is easy to find) + iPXE."""
    cfg = render_grub_cfg(script)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        tar.addfile(tar_member("boot", 0, directory=True))
        tar.addfile(tar_member("boot/grub", 0, directory=True))
        tar.addfile(tar_member(CFG_NAME, len(cfg)), io.BytesIO(cfg))
        tar.addfile(tar_member(IPXE_NAME, len(ipxe_efi)), io.BytesIO(ipxe_efi))
    return buf.getvalue()


def extract_script(image: bytes) -> bytes:
    """The script a built image runs, read back from it (for tests and support).

    grub-mkimage stores the memdisk uncompressed, so the tar's ``grub.cfg`` is found by
    its header name and the script is unquoted from the ``set zos_script=`` line.
    """
    header = CFG_NAME.encode() + b"\0"
    start = image.find(header)
    if start < 0:
        raise ValueError("no zosboot memdisk in this image")
    with tarfile.open(fileobj=io.BytesIO(image[start:]), mode="r:") as tar:
        member = tar.next()
        fh = tar.extractfile(member) if member is not None else None
        if member is None or member.name != CFG_NAME or fh is None:
            raise ValueError("no zosboot grub.cfg in this image")
        cfg = fh.read()
    match = _SCRIPT_RE.search(cfg)
    if match is None:
        raise ValueError("the image's grub.cfg holds no script")
    return match.group(1).replace(b"'\\''", b"'")
