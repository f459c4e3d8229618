"""What a QEMU guest boots from: a CD, a USB stick, a disk, an EFI system partition given as
a directory, or a kernel QEMU loads itself; and BIOS GRUB and ISOLINUX CDs set up the
documented ways. Each medium knows the QEMU arguments that attach it as the first boot
device."""

from __future__ import annotations

import re
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


def qemu_escape(value: str) -> str:
    """Double commas, which QEMU's ``key=value,...`` option parser treats as separators."""
    return value.replace(",", ",,")


class Media(Protocol):
    """Something a guest boots from; it knows the QEMU arguments that attach it."""

    def qemu_args(self) -> list[str]:
        """QEMU arguments that attach this medium as the first boot device."""
        ...


def _drive(path: Path | str, **opts: str) -> str:
    """A ``-drive`` value for ``if=none`` drives, with the file name comma-escaped."""
    extra = "".join(f",{key}={value}" for key, value in opts.items())
    return f"if=none,id=boot0,format=raw,file={qemu_escape(str(path))}{extra}"


@dataclass(frozen=True)
class Cdrom:
    """An ISO attached as an IDE/AHCI CD-ROM (what BMC virtual media looks like)."""

    path: Path

    def qemu_args(self) -> list[str]:
        return [
            "-drive", _drive(self.path, media="cdrom", readonly="on"),
            "-device", "ide-cd,drive=boot0,bootindex=0",
        ]  # fmt: skip


@dataclass(frozen=True)
class ScsiCdrom:
    """An ISO as a CD-ROM on a virtio SCSI controller: a CD for machines without IDE (QEMU's
    arm64 ``virt``), which AAVMF boots like any CD (El Torito)."""

    path: Path

    def qemu_args(self) -> list[str]:
        return [
            "-device", "virtio-scsi-pci,id=scsi0",
            "-drive", _drive(self.path, media="cdrom", readonly="on"),
            "-device", "scsi-cd,bus=scsi0.0,drive=boot0,bootindex=0",
        ]  # fmt: skip


@dataclass(frozen=True)
class UsbStick:
    """A raw image on a USB mass-storage device behind an xHCI controller.

    ``snapshot=on`` keeps the image file unchanged whatever the guest writes.
    """

    path: Path

    def qemu_args(self) -> list[str]:
        return [
            "-device", "qemu-xhci,id=xhci",
            "-drive", _drive(self.path, snapshot="on"),
            "-device", "usb-storage,bus=xhci.0,drive=boot0,removable=on,bootindex=0",
        ]  # fmt: skip


@dataclass(frozen=True)
class Disk:
    """A raw image as a plain IDE/AHCI hard disk (e.g. a UEFI disk image)."""

    path: Path

    def qemu_args(self) -> list[str]:
        return [
            "-drive", _drive(self.path, snapshot="on"),
            "-device", "ide-hd,drive=boot0,bootindex=0",
        ]  # fmt: skip


@dataclass(frozen=True)
class EspDir:
    """A host directory shown to the guest as a FAT disk (QEMU vvfat).

    Lets a UEFI test lay out ``EFI/BOOT/BOOTX64.EFI`` + ``autoexec.ipxe`` without building
    an image first. Without vvfat's ``rw:`` nothing is ever written back to the directory;
    ``snapshot=on`` rather than ``readonly=on`` because ide-hd refuses read-only drives.
    ``device="virtio-blk-pci"`` for machines without IDE (QEMU's arm64 ``virt``).
    """

    path: Path
    device: str = "ide-hd"

    def qemu_args(self) -> list[str]:
        return [
            "-drive", _drive(f"fat:{self.path}", snapshot="on"),
            "-device", f"{self.device},drive=boot0,bootindex=0",
        ]  # fmt: skip


@dataclass(frozen=True)
class DirectKernel:
    """QEMU loads a kernel (e.g. ``ipxe.lkrn``) itself, as a boot loader would.

    ``-kernel``/``-initrd``/``-append`` take plain strings, so no comma escaping here.
    ``ipxe.lkrn`` runs its initrd as a script, and its command line as a script too.
    For BIOS: OVMF did not start ``ipxe-amd64.efi`` given as ``-kernel`` (it fell through
    to its shell), so UEFI tests boot iPXE from an :class:`EspDir` or an image instead.
    """

    kernel: Path
    initrd: Path | None = None
    append: str | None = None

    def qemu_args(self) -> list[str]:
        args = ["-kernel", str(self.kernel)]
        if self.initrd is not None:
            args += ["-initrd", str(self.initrd)]
        if self.append is not None:
            args += ["-append", self.append]
        return args


def _grub_entry(howto: str) -> str:
    """The GRUB ``menuentry "Zero-OS" {...}`` of a how-to text, as written there."""
    stanza = re.search(r'^ *menuentry "Zero-OS" \{\n.*?^ *\}$', howto, re.S | re.M)
    assert stanza, "the how-to has no GRUB menuentry"
    return stanza.group(0)


def _grub_rescue_cd(root: Path, entry: str, dest: Path) -> Path:
    """GRUB for BIOS on a CD (grub-mkrescue), booting ``entry`` at once."""
    (root / "boot" / "grub").mkdir(parents=True, exist_ok=True)
    (root / "boot" / "grub" / "grub.cfg").write_text(
        "set timeout=0\nset default=0\n" + entry + "\n"
    )
    subprocess.run(
        ["grub-mkrescue", "-d", "/usr/lib/grub/i386-pc", "-o", str(dest), str(root)],
        capture_output=True, timeout=120, check=True,
    )  # fmt: skip
    return dest


def grub_bios_cd(krn: Path, dest: Path, workdir: Path) -> Path:
    """A BIOS GRUB CD set up exactly as README.txt in the krn tar tells a farmer to."""
    root = workdir / "root"
    (root / "boot").mkdir(parents=True)
    with tarfile.open(krn) as tar:
        tar.extractall(root / "boot", filter="data")
    readme = (root / "boot" / "zos" / "README.txt").read_text()
    return _grub_rescue_cd(root, _grub_entry(readme), dest)


def grub_bios_cd_lkrn(lkrn: Path, howto: str, dest: Path, workdir: Path) -> Path:
    """A BIOS GRUB CD set up as ``howto`` (the single-file krn's) tells a farmer to: the
    file copied to ``/boot/zos.lkrn`` and its menuentry, nothing else."""
    root = workdir / "root"
    (root / "boot").mkdir(parents=True)
    (root / "boot" / "zos.lkrn").write_bytes(lkrn.read_bytes())
    entry = _grub_entry(howto)
    assert "initrd" not in entry, entry
    return _grub_rescue_cd(root, entry, dest)


def isolinux_cd_lkrn(lkrn: Path, howto: str, dest: Path, workdir: Path) -> Path:
    """A BIOS ISOLINUX CD set up as ``howto`` tells a syslinux user to: the file next to the
    config as ``zos.lkrn`` and its ``LABEL`` entry, nothing else (xorriso, no root)."""
    stanza = re.search(r"^ *LABEL zos\n(?: {3,}\S.*\n)+", howto, re.M)
    assert stanza, "the how-to has no syslinux LABEL entry"
    root = workdir / "isolinux-root"
    (root / "isolinux").mkdir(parents=True)
    for part in ("/usr/lib/ISOLINUX/isolinux.bin", "/usr/lib/syslinux/modules/bios/ldlinux.c32"):
        (root / "isolinux" / Path(part).name).write_bytes(Path(part).read_bytes())
    (root / "isolinux" / "zos.lkrn").write_bytes(lkrn.read_bytes())
    (root / "isolinux" / "isolinux.cfg").write_text(
        "DEFAULT zos\nPROMPT 0\nTIMEOUT 0\n" + stanza.group(0)
    )
    subprocess.run(
        ["xorriso", "-as", "mkisofs", "-quiet", "-o", str(dest),
         "-b", "isolinux/isolinux.bin", "-c", "isolinux/boot.cat",
         "-no-emul-boot", "-boot-load-size", "4", "-boot-info-table", str(root)],
        capture_output=True, timeout=120, check=True,
    )  # fmt: skip
    return dest
