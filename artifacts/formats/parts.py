"""Pieces several media share: what UEFI boots from, the syslinux config, the licence, and
the wrapper every builder goes through."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

from .toolchain import BuildError, Toolchain, place

#: What the EFI build of iPXE runs at start-up when it finds it next to itself.
AUTOEXEC = "autoexec.ipxe"
#: Name of iPXE's licence text (Debian's copyright file) inside every image that ships iPXE
#: next to other files.
LICENSE_NAME = "IPXE-LICENSE.txt"

BuildFunction = Callable[[bytes, Path, Path, Toolchain], None]


def esp_tree(tree: Path, script: bytes, tc: Toolchain) -> None:
    """Lay out what UEFI firmware boots from removable media: iPXE for each architecture under
    its default name (x86-64 firmware starts BOOTX64.EFI, arm64 firmware BOOTAA64.EFI) and the
    one autoexec script next to them, which picks the kernel by iPXE's ${buildarch}."""
    place(tree / "EFI" / "BOOT" / "BOOTX64.EFI", tc.ipxe_efi)
    place(tree / "EFI" / "BOOT" / "BOOTAA64.EFI", tc.ipxe_efi_arm64)
    place(tree / "EFI" / "BOOT" / AUTOEXEC, script)


def syslinux_cfg(kernel: str, script_path: str) -> bytes:
    """A syslinux/isolinux config that boots iPXE at once, the script as its initrd."""
    return (
        "DEFAULT zos\n"
        "PROMPT 0\n"
        "TIMEOUT 0\n"
        "LABEL zos\n"
        f"  KERNEL {kernel}\n"
        f"  APPEND initrd={script_path}\n"
    ).encode()


def media_builder(build: BuildFunction, *, embeds_script: bool = True) -> BuildFunction:
    """Wrap a builder: check the script it embeds, and turn OS errors into operator messages."""

    @functools.wraps(build)
    def wrapper(script: bytes, dest: Path, workdir: Path, tc: Toolchain) -> None:
        if embeds_script and (not isinstance(script, bytes) or not script.startswith(b"#!ipxe")):
            raise ValueError("an iPXE script must be bytes starting with #!ipxe")
        try:
            build(script, Path(dest), Path(workdir), tc)
        except OSError as exc:
            where = f" ({exc.filename})" if exc.filename else ""
            raise BuildError(f"{exc.strerror or exc}{where}") from exc

    return wrapper
