"""Every boot image format zosboot hands out: the registry of formats, what each download is
called, the static targets, and the toolchain checks and fingerprint over all of them.

Why it looks like this (DESIGN.md, "iPXE"): iPXE is never compiled here. Debian's prebuilt
binaries are wrapped into media that give them the farm's script at boot: ``ipxe.lkrn`` gets
it as its initrd from isolinux/syslinux/GRUB, the EFI build finds it as ``autoexec.ipxe``
next to itself. The two single-file downloads carry it inside: ``uefi`` in a GRUB memdisk
that passes it as iPXE's load options, ``krn`` in extra setup sectors of ``ipxe.lkrn`` that
hand it over as iPXE's command line (``lkrn``). Assembling such media with mtools, xorriso
and syslinux takes milliseconds, needs no root, no loop mounts and no network.

The package, one idea a module: ``toolchain`` (where the tools and binaries are, running
them, fingerprints), ``geometry`` (FAT and disk layout), ``parts`` (pieces media share), one
module per medium (``iso``, ``usb``, ``uefimg``, ``lkrn``, ``krn`` (the tar of parts),
``standalone_efi``, ``plain``), and ``pxe_kit``, the folder a LAN boots from over PXE.
Plain Python, no Django: the builder and the cache call this, and so do plain tests.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from . import lkrn, pxe_kit, standalone_efi
from .iso import build_iso
from .krn import KRN_README, build_krn, tar_member
from .lkrn import LKRN_HOWTO, UnembeddableScript
from .parts import AUTOEXEC, LICENSE_NAME, BuildFunction, media_builder
from .plain import plain
from .toolchain import (
    BUILDER_VERSION,
    EPOCH,
    BuildError,
    Toolchain,
    file_sha256,
    tool_version,
)
from .uefimg import build_uefimg
from .usb import build_usb


@dataclass(frozen=True)
class Format:
    """One kind of download.

    ``build(script, dest, workdir, toolchain)`` writes the image to ``dest`` (overwriting
    it; publishing it atomically is the caller's job) using ``workdir``, an existing
    directory private to this build, for scratch files. ``needs`` names the Toolchain
    paths it reads and ``tools`` the executables it runs, for :func:`check_toolchain` and
    :func:`toolchain_fingerprint`.
    """

    name: str
    extension: str
    content_type: str
    summary: str
    build: BuildFunction
    needs: tuple[str, ...] = ()
    tools: tuple[str, ...] = ()
    #: Extra checks and fingerprint inputs of a format built outside this module.
    problems: Callable[[Toolchain], list[str]] | None = None
    fingerprint: Callable[[Toolchain], str] | None = None


_LKRN, _EFI = ("ipxe_lkrn",), ("ipxe_efi",)
# Media with an EFI system partition carry iPXE for both architectures (BOOTX64.EFI and
# BOOTAA64.EFI) and one script, so one image boots PCs and arm64 servers.
_BOTH_EFI = ("ipxe_efi", "ipxe_efi_arm64")

FORMATS: dict[str, Format] = {
    fmt.name: fmt
    for fmt in (
        Format(
            name="iso",
            extension="iso",
            content_type="application/x-iso9660-image",
            summary="CD/DVD or BMC virtual media image; also boots when written to a USB stick",
            build=build_iso,
            needs=(
                "ipxe_lkrn",
                *_BOTH_EFI,
                "ipxe_license",
                "isolinux_bin",
                "isohybrid_mbr",
                "ldlinux_c32",
            ),
            tools=("mformat", "mmd", "mcopy", "xorriso"),
        ),
        Format(
            name="usb",
            extension="img",
            content_type="application/octet-stream",
            summary="USB stick image (write it with dd, Rufus or Etcher); BIOS and UEFI",
            build=build_usb,
            needs=("ipxe_lkrn", *_BOTH_EFI, "ipxe_license", "syslinux_mbr"),
            tools=("sfdisk", "mformat", "mmd", "mcopy", "syslinux"),
        ),
        Format(
            name="uefimg",
            extension="img",
            content_type="application/octet-stream",
            summary="UEFI-only disk image (GPT + EFI system partition) for disks or sticks",
            build=build_uefimg,
            needs=(*_BOTH_EFI, "ipxe_license"),
            tools=("sfdisk", "mformat", "mmd", "mcopy"),
        ),
        Format(
            name="krn",
            extension="lkrn",
            content_type="application/octet-stream",
            summary="One iPXE kernel file for an existing GRUB (linux16) or syslinux, BIOS boot",
            build=lkrn.build_lkrn,
            needs=_LKRN,
            fingerprint=lkrn.lkrn_fingerprint,
        ),
        Format(
            name="krn-tar",
            extension="tar",
            content_type="application/x-tar",
            summary="The parts: iPXE kernel + script as its initrd, for GRUB or syslinux",
            build=build_krn,
            needs=("ipxe_lkrn", "ipxe_license"),
        ),
        Format(
            name="uefi",
            extension="efi",
            content_type="application/efi",
            summary="Single EFI program for a UEFI boot entry or shell",
            build=media_builder(standalone_efi.build_standalone_efi),
            needs=_EFI,
            problems=standalone_efi.check_standalone_efi_tools,
            fingerprint=standalone_efi.standalone_efi_fingerprint,
        ),
        Format(
            name="uefi-arm64",
            extension="efi",
            content_type="application/efi",
            summary="Single EFI program for an arm64 machine's UEFI boot entry or shell",
            build=media_builder(
                functools.partial(standalone_efi.build_standalone_efi, arch="arm64")
            ),
            needs=("ipxe_efi_arm64",),
            problems=functools.partial(standalone_efi.check_standalone_efi_tools, arch="arm64"),
            fingerprint=functools.partial(standalone_efi.standalone_efi_fingerprint, arch="arm64"),
        ),
        Format(
            name="pxe-kit",
            extension="tar.gz",
            content_type="application/gzip",
            summary="Network boot for a whole LAN: proxy-DHCP and TFTP beside the router, "
            "for one machine of the LAN to run",
            build=pxe_kit.build_pxe_kit,
            needs=pxe_kit.NEEDS,
        ),
        Format(
            name="lkrn-plain",
            extension="lkrn",
            content_type="application/octet-stream",
            summary="Plain iPXE kernel, no script inside",
            build=plain("ipxe_lkrn"),
            needs=_LKRN,
        ),
        Format(
            name="efi-plain",
            extension="efi",
            content_type="application/efi",
            summary="Plain iPXE EFI program, no script inside",
            build=plain("ipxe_efi"),
            needs=_EFI,
        ),
        Format(
            name="efi-plain-arm64",
            extension="efi",
            content_type="application/efi",
            summary="Plain iPXE EFI program for arm64 machines, no script inside",
            build=plain("ipxe_efi_arm64"),
            needs=("ipxe_efi_arm64",),
        ),
    )
}


#: How each format is named when downloaded: zos-prod-1234.iso, zos-prod-1234-usb.img, ...
FILENAME_SUFFIX = {
    "iso": ".iso",
    "usb": "-usb.img",
    "uefimg": "-uefi.img",
    "uefi": ".efi",
    "uefi-arm64": "-arm64.efi",
    "krn": ".lkrn",
    "krn-tar": "-ipxe.tar",
    "lkrn-plain": ".lkrn",
    "efi-plain": ".efi",
    "efi-plain-arm64": "-arm64.efi",
    "pxe-kit": "-pxe-kit.tar.gz",
}
#: The formats a farm's script goes into (`/<format>/<net>[/<farm>...]`).
IMAGE_FORMATS = ("iso", "usb", "uefimg", "uefi", "krn", "krn-tar")


@dataclass(frozen=True)
class StaticTarget:
    """A download that is the same for every farm: which format, and whether its script
    chains `/provision/<mac>` (otherwise iPXE runs with no script at all)."""

    format: str
    provisions: bool
    stem: str


STATIC_TARGETS = {
    "krn-generic": StaticTarget("lkrn-plain", False, "ipxe-generic"),
    "uefi-generic": StaticTarget("efi-plain", False, "ipxe-generic"),
    "krn-provision": StaticTarget("krn", True, "zos-provision"),
    "uefi-provision": StaticTarget("uefi", True, "zos-provision"),
}


#: The architectures a download may be asked for (`?arch=`); amd64 is the default. Formats
#: with an EFI system partition (iso, usb, uefimg) serve both in one image; the single EFI
#: programs have one build per architecture; krn is for BIOS PCs only.
ARCHES = ("amd64", "arm64")
ARCH_FORMATS = {("uefi", "arm64"): "uefi-arm64", ("efi-plain", "arm64"): "efi-plain-arm64"}
BOTH_ARCHES = frozenset({"iso", "usb", "uefimg"})


def format_for(name: str, arch: str) -> str | None:
    """The format that serves `name` to `arch` machines; None when there is none (krn for
    arm64). ValueError for an architecture the service does not know."""
    if arch not in ARCHES:
        raise ValueError(f"unknown architecture {arch!r}: amd64 or arm64")
    if arch == "amd64" or name in BOTH_ARCHES:
        return name
    return ARCH_FORMATS.get((name, arch))


def download_name(net: str, farmer_id: int | str | None) -> str:
    """The file name stem of a farm's image, e.g. zos-prod-1234."""
    return f"zos-{net}-{farmer_id}" if farmer_id is not None else f"zos-{net}"


# --- toolchain checks and fingerprint ------------------------------------------------------


def _selected(names: str | Iterable[str] | None) -> list[Format]:
    if names is None:
        return list(FORMATS.values())
    return [FORMATS[name] for name in ([names] if isinstance(names, str) else names)]


def check_toolchain(tc: Toolchain, names: str | Iterable[str] | None = None) -> list[str]:
    """Readable problems that would make the given formats (all by default) fail to build.

    Meant for system checks at start-up, so a missing package shows before a farmer asks.
    """
    formats = _selected(names)
    problems: list[str] = []
    for need in dict.fromkeys(need for fmt in formats for need in fmt.needs):
        path: Path = getattr(tc, need)
        if not path.is_file():
            hint = "run setup/install-ipxe.sh" if path.parent == tc.ipxe_dir else "install it"
            problems.append(f"{path} not found ({hint})")
    for tool in dict.fromkeys(tool for fmt in formats for tool in fmt.tools):
        try:
            tc.which(tool)
        except BuildError as exc:
            problems.append(str(exc))
    for fmt in formats:
        if fmt.problems is not None:
            problems.extend(fmt.problems(tc))
    return problems


def toolchain_fingerprint(tc: Toolchain, names: str | Iterable[str] | None = None) -> str:
    """sha256 over everything besides the script that decides the images' bytes.

    The files the formats read by content, the tools by executable and reported version,
    and BUILDER_VERSION. For cache keys, so an upgraded package means new images; pass a
    format name to have only that format's images rebuilt when its own inputs change.
    Cheap after the first call: results are remembered per file (size, mtime, inode).
    """
    formats = _selected(names)
    digest = hashlib.sha256(f"zosboot builder {BUILDER_VERSION}\n".encode())
    for need in sorted({need for fmt in formats for need in fmt.needs}):
        digest.update(f"{need} {file_sha256(getattr(tc, need))}\n".encode())
    for tool in sorted({tool for fmt in formats for tool in fmt.tools}):
        digest.update(f"{tool} {tool_version(tc, tool)}\n".encode())
    for fmt in formats:
        if fmt.fingerprint is not None:
            digest.update(f"{fmt.name} {fmt.fingerprint(tc)}\n".encode())
    return digest.hexdigest()


__all__ = [
    "ARCHES",
    "ARCH_FORMATS",
    "AUTOEXEC",
    "BOTH_ARCHES",
    "BUILDER_VERSION",
    "EPOCH",
    "FILENAME_SUFFIX",
    "FORMATS",
    "IMAGE_FORMATS",
    "KRN_README",
    "LICENSE_NAME",
    "LKRN_HOWTO",
    "STATIC_TARGETS",
    "BuildError",
    "Format",
    "StaticTarget",
    "Toolchain",
    "UnembeddableScript",
    "check_toolchain",
    "download_name",
    "format_for",
    "file_sha256",
    "tar_member",
    "toolchain_fingerprint",
]
