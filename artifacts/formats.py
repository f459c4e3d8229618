"""Every boot image format zosboot hands out, and how to build each from an iPXE script.

Why it looks like this (DESIGN.md, "iPXE"): iPXE is never compiled here. Debian's prebuilt
binaries are wrapped, unchanged, into media that give them the farm's script at boot:
``ipxe.lkrn`` gets it as its initrd from isolinux/syslinux/GRUB, the EFI build finds it as
``autoexec.ipxe`` next to itself. Assembling such media with mtools, xorriso and syslinux
takes milliseconds, needs no root, no loop mounts and no network.

Every build is reproducible: the same script and toolchain give the same bytes, so several
instances can build independently and agree on cache keys and ETags. Hence the fixed
timestamps (:data:`EPOCH`), and ids (volume serials, disk GUIDs) derived from the script.

Plain Python, no Django: the builder and the cache call this, and so do plain tests.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import io
import math
import os
import shutil
import subprocess
import tarfile
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

#: Part of every cache key: bump it whenever a change here changes the bytes of an image.
BUILDER_VERSION = "2"

#: The one timestamp every file, directory and volume inside an image carries
#: (2025-01-01T00:00:00Z), so two builds of the same script are byte-identical.
EPOCH = 1735689600

#: What the EFI build of iPXE runs at start-up when it finds it next to itself.
AUTOEXEC = "autoexec.ipxe"
#: Name of iPXE's licence text (Debian's copyright file) inside every image that ships iPXE
#: next to other files.
LICENSE_NAME = "IPXE-LICENSE.txt"
#: Volume label of every FAT and ISO file system we make (max. 11 characters for FAT).
VOLUME_LABEL = "ZOSBOOT"

_SECTOR = 512
# Partitions start at 1 MiB, where every partitioning tool of the last 15 years puts them.
_PART_START = 2048
# Geometry written into FAT boot sectors, only used by BIOSes without LBA disk calls:
# 64 heads x 32 sectors (1 MiB cylinders), the usual one for USB disks (syslinux --zip).
_HEADS, _SPT = 64, 32
# FAT16 begins at 4085 clusters; a margin keeps mformat's own rounding above it.
_FAT16_MIN_CLUSTERS = 4085 + 64
# Free room left on writable FAT media, so a farmer can edit the script on the stick.
_FAT_SLACK = 64 * 1024
# Room for ldlinux.sys + ldlinux.c32, which the syslinux installer carries inside itself
# and writes (about 180 KiB for syslinux 6.04).
_SYSLINUX_FILES = 256 * 1024
_ESP_TYPE_GUID = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"

# Which Debian package provides each external tool, for error messages and checks.
_TOOL_PACKAGES = {
    "xorriso": "xorriso",
    "mformat": "mtools",
    "mcopy": "mtools",
    "mmd": "mtools",
    "syslinux": "syslinux",
    "sfdisk": "fdisk",
}
# xorriso is the one tool that does not take --version (for the toolchain fingerprint).
_VERSION_FLAGS = {"xorriso": "-version"}


class BuildError(Exception):
    """A build failed; the message is for an operator ("xorriso not found", "disk full")."""


@dataclass(frozen=True)
class Toolchain:
    """Where the iPXE binaries, the syslinux files and the external tools are.

    Defaults are the paths of Debian's ``isolinux`` and ``syslinux-common`` packages.
    ``tool_path`` is searched for executables (the process's PATH when None); tests point
    it at an empty directory to prove a missing tool is reported, not crashed on.
    """

    ipxe_dir: Path
    isolinux_bin: Path = Path("/usr/lib/ISOLINUX/isolinux.bin")
    isohybrid_mbr: Path = Path("/usr/lib/ISOLINUX/isohdpfx.bin")
    ldlinux_c32: Path = Path("/usr/lib/syslinux/modules/bios/ldlinux.c32")
    syslinux_mbr: Path = Path("/usr/lib/syslinux/mbr/mbr.bin")
    tool_path: str | None = None
    timeout: float = 60.0

    @property
    def ipxe_efi(self) -> Path:
        """Debian's full x86-64 EFI build (native drivers + SNP, HTTPS, autoexec.ipxe)."""
        return self.ipxe_dir / "ipxe-amd64.efi"

    @property
    def ipxe_license(self) -> Path:
        """Debian's copyright file of the iPXE package: its GPL terms travel with the binaries."""
        return self.ipxe_dir / "copyright"

    @property
    def ipxe_lkrn(self) -> Path:
        """iPXE as a Linux kernel image: bootable by isolinux, syslinux, GRUB, QEMU."""
        return self.ipxe_dir / "ipxe.lkrn"

    def which(self, tool: str) -> str:
        """Absolute path of an external tool, or a BuildError naming its Debian package."""
        found = shutil.which(tool, path=self.tool_path)
        if found is None:
            package = _TOOL_PACKAGES.get(tool, tool)
            raise BuildError(f"{tool} not found (install the Debian package {package})")
        return found


BuildFunction = Callable[[bytes, Path, Path, Toolchain], None]


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
    embeds_script: bool = True
    #: Extra checks and fingerprint inputs of a format built outside this module.
    problems: Callable[[Toolchain], list[str]] | None = None
    fingerprint: Callable[[Toolchain], str] | None = None


# --- helpers -------------------------------------------------------------------------------


def _run(tc: Toolchain, argv: list[str], workdir: Path, stdin: bytes | None = None) -> None:
    """Run one tool: argument list, no shell, timeout, a quiet and pinned environment.

    HOME points at the scratch dir so no user's ~/.mtoolsrc or ~/.xorrisorc can change
    the output; SOURCE_DATE_EPOCH and TZ pin every timestamp mtools and xorriso write.
    """
    tool = argv[0]
    env = {
        "PATH": tc.tool_path if tc.tool_path is not None else os.environ.get("PATH", ""),
        "HOME": str(workdir),
        "TMPDIR": str(workdir),
        "LC_ALL": "C",
        "TZ": "UTC",
        "SOURCE_DATE_EPOCH": str(EPOCH),
        "MTOOLS_SKIP_CHECK": "1",
    }
    try:
        result = subprocess.run(
            [tc.which(tool), *argv[1:]],
            input=stdin,
            capture_output=True,
            cwd=workdir,
            env=env,
            timeout=tc.timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise BuildError(f"{tool} did not finish within {tc.timeout:g} s") from exc
    except OSError as exc:
        raise BuildError(f"{tool} could not be started: {exc.strerror or exc}") from exc
    if result.returncode != 0:
        said = (result.stderr or result.stdout).decode("utf-8", "replace").strip()
        said = "\n".join(said.splitlines()[-10:]) or "no message"
        raise BuildError(f"{tool} failed (exit status {result.returncode}): {said}")


def _read(path: Path) -> bytes:
    """Read a toolchain file, with a message that says which one is missing."""
    try:
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise BuildError(f"{path} not found (is the toolchain installed?)") from exc


def _place(dest: Path, content: bytes | Path) -> None:
    """Write a staging file. Copies, never links: no tool may touch an installed file
    (mkisofs-style ``-boot-info-table`` patches the isolinux.bin it is given)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, Path):
        try:
            shutil.copyfile(content, dest)
        except FileNotFoundError as exc:
            raise BuildError(f"{content} not found (is the toolchain installed?)") from exc
    else:
        dest.write_bytes(content)


def _ids(kind: str, script: bytes) -> tuple[uuid.UUID, uuid.UUID, int]:
    """Disk GUID, partition GUID and 32-bit serial for an image, derived from its content.

    Derived rather than random for reproducibility, and from the script rather than
    constant so two sticks for different farms in one machine do not share ids.
    """
    digest = hashlib.sha256(b"zosboot ids\0" + kind.encode() + b"\0" + script).digest()
    return (
        uuid.UUID(bytes=digest[0:16], version=4),
        uuid.UUID(bytes=digest[16:32], version=4),
        int.from_bytes(digest[0:4], "big"),
    )


def _fat_sectors(files: Iterable[int], dirs: int, *, fat16: bool, slack: int) -> int:
    """Total sectors of a FAT file system with 512-byte clusters that holds the files.

    One-sector clusters waste the least space. FAT16 is forced for partitions on disk
    images (some firmware is wary of FAT12 outside floppies and El Torito images).
    """
    clusters = sum(math.ceil(size / _SECTOR) for size in files)
    clusters += dirs + math.ceil(slack / _SECTOR) + 8
    bits = 12
    if fat16 or clusters > 4084 - 64:
        bits = 16
        clusters = max(clusters, _FAT16_MIN_CLUSTERS)
    fat = math.ceil((clusters + 2) * bits / 8 / _SECTOR)
    root_dir = 32  # 512 entries
    return 1 + 2 * fat + root_dir + clusters


def _make_fat(
    tc: Toolchain,
    image: Path,
    tree: Path,
    *,
    sectors: int,
    offset: int,
    serial: int,
    workdir: Path,
) -> None:
    """Format a FAT file system at ``offset`` sectors into ``image`` and copy ``tree`` in.

    The image file must already be large enough. mtools writes every timestamp as
    SOURCE_DATE_EPOCH (set by :func:`_run`) and the serial is fixed. Geometry goes first
    because mformat ignores -h/-s given after -T. Directories are made and files copied
    in sorted order, one mcopy per directory: ``mcopy -s`` would follow the host's
    readdir order, which differs between file systems, and so would the bytes.
    """
    target = f"{image}@@{offset * _SECTOR}"
    _run(tc, [
        "mformat", "-i", target, "-h", str(_HEADS), "-s", str(_SPT), "-T", str(sectors),
        "-H", str(offset), "-c", "1", "-r", "32", "-N", f"{serial:08x}", "-v", VOLUME_LABEL,
        "::",
    ], workdir)  # fmt: skip
    dirs = sorted(p.relative_to(tree).as_posix() for p in tree.rglob("*") if p.is_dir())
    if dirs:
        _run(tc, ["mmd", "-i", target, *(f"::/{d}" for d in dirs)], workdir)
    for rel in ["", *dirs]:
        files = sorted(p for p in (tree / rel).iterdir() if p.is_file())
        if files:
            _run(tc, ["mcopy", "-Q", "-i", target, *map(str, files), f"::/{rel}"], workdir)


def _esp_tree(tree: Path, script: bytes, tc: Toolchain) -> None:
    """Lay out what UEFI firmware boots from removable media: iPXE + its autoexec script."""
    _place(tree / "EFI" / "BOOT" / "BOOTX64.EFI", tc.ipxe_efi)
    _place(tree / "EFI" / "BOOT" / AUTOEXEC, script)


def _tree_sizes(tree: Path) -> tuple[list[int], int]:
    """File sizes and directory count of a staging tree, to size the FAT holding it."""
    sizes, dirs = [], 0
    for path in tree.rglob("*"):
        if path.is_dir():
            dirs += 1
        else:
            sizes.append(path.stat().st_size)
    return sizes, dirs


def _syslinux_cfg(kernel: str, script_path: str) -> bytes:
    """A syslinux/isolinux config that boots iPXE at once, the script as its initrd."""
    return (
        "DEFAULT zos\n"
        "PROMPT 0\n"
        "TIMEOUT 0\n"
        "LABEL zos\n"
        f"  KERNEL {kernel}\n"
        f"  APPEND initrd={script_path}\n"
    ).encode()


def _zero_file(path: Path, sectors: int) -> None:
    """Create a sparse all-zero image of the given size."""
    with open(path, "wb") as fh:
        fh.truncate(sectors * _SECTOR)


def _builder(build: BuildFunction, *, embeds_script: bool = True) -> BuildFunction:
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


# --- builders ------------------------------------------------------------------------------


@_builder
def build_iso(script: bytes, dest: Path, workdir: Path, tc: Toolchain) -> None:
    """Hybrid ISO: a CD under BIOS (isolinux) and UEFI (El Torito EFI image), and a USB
    stick under both when written raw (isohybrid MBR + GPT marking the EFI image)."""
    tree = workdir / "iso"
    _place(tree / "boot" / "isolinux" / "isolinux.bin", tc.isolinux_bin)
    _place(tree / "boot" / "isolinux" / "ldlinux.c32", tc.ldlinux_c32)
    _place(tree / "boot" / "isolinux" / "isolinux.cfg",
           _syslinux_cfg("/boot/ipxe.lkrn", "/zos.ipxe"))  # fmt: skip
    _place(tree / "boot" / "ipxe.lkrn", tc.ipxe_lkrn)
    # At the root, so a farmer who opens the ISO sees what it will do.
    _place(tree / "zos.ipxe", script)
    _place(tree / LICENSE_NAME, tc.ipxe_license)

    esp = workdir / "esp"
    _esp_tree(esp, script, tc)
    sizes, dirs = _tree_sizes(esp)
    # Read-only medium: no slack; FAT12 like the EFI images of Debian's own ISOs.
    sectors = _fat_sectors(sizes, dirs, fat16=False, slack=0)
    efi_img = tree / "boot" / "efi.img"
    _zero_file(efi_img, sectors)
    disk_guid, _, serial = _ids("iso", script)
    _make_fat(tc, efi_img, esp, sectors=sectors, offset=0, serial=serial, workdir=workdir)

    stamp = "2025010100000000"  # EPOCH as YYYYMMDDhhmmsscc
    _run(tc, [
        "xorriso", "-as", "mkisofs", "-quiet",
        "-o", str(dest),
        "-V", VOLUME_LABEL, "-iso-level", "3", "-r", "-J", "-joliet-long", "-no-pad",
        f"--modification-date={stamp}", "--set_all_file_dates", stamp,
        "--gpt_disk_guid", str(disk_guid),
        "-b", "boot/isolinux/isolinux.bin", "-c", "boot/isolinux/boot.cat",
        "-no-emul-boot", "-boot-load-size", "4", "-boot-info-table",
        "-isohybrid-mbr", str(tc.isohybrid_mbr),
        "-eltorito-alt-boot", "-e", "boot/efi.img", "-no-emul-boot",
        "-isohybrid-gpt-basdat",
        str(tree),
    ], workdir)  # fmt: skip


@_builder
def build_usb(script: bytes, dest: Path, workdir: Path, tc: Toolchain) -> None:
    """Raw disk for dd: MBR (syslinux mbr.bin) + one active FAT16 partition that boots
    ipxe.lkrn via syslinux under BIOS and BOOTX64.EFI under UEFI, one shared script."""
    script_path = f"/EFI/BOOT/{AUTOEXEC}"
    tree = workdir / "usb"
    _esp_tree(tree, script, tc)
    _place(tree / "ipxe.lkrn", tc.ipxe_lkrn)
    _place(tree / "syslinux.cfg", _syslinux_cfg("/ipxe.lkrn", script_path))
    _place(tree / LICENSE_NAME, tc.ipxe_license)
    mbr_code = _read(tc.syslinux_mbr)[:440]

    sizes, dirs = _tree_sizes(tree)
    sizes.append(_SYSLINUX_FILES)
    sectors = _fat_sectors(sizes, dirs, fat16=True, slack=_FAT_SLACK)
    _zero_file(dest, _PART_START + sectors)
    _, _, serial = _ids("usb", script)
    _run(tc, ["sfdisk", "--quiet", "--no-reread", "--no-tell-kernel", "--wipe", "never",
              str(dest)],
         workdir,
         stdin=(
             "label: dos\n"
             f"label-id: 0x{serial:08x}\n"
             f"start={_PART_START}, size={sectors}, type=e, bootable\n"
         ).encode())  # fmt: skip
    _make_fat(tc, dest, tree, sectors=sectors, offset=_PART_START, serial=serial, workdir=workdir)
    _run(tc, ["syslinux", "--offset", str(_PART_START * _SECTOR), "--install", str(dest)],
         workdir)  # fmt: skip
    # syslinux's MBR code boots the active partition; the table after byte 440 stays.
    with open(dest, "r+b") as fh:
        fh.write(mbr_code)


@_builder
def build_uefimg(script: bytes, dest: Path, workdir: Path, tc: Toolchain) -> None:
    """UEFI disk image: GPT with one EFI System Partition (FAT16) holding iPXE + script."""
    tree = workdir / "esp"
    _esp_tree(tree, script, tc)
    _place(tree / LICENSE_NAME, tc.ipxe_license)
    sizes, dirs = _tree_sizes(tree)
    sectors = _fat_sectors(sizes, dirs, fat16=True, slack=_FAT_SLACK)
    backup_gpt = 33  # header + 128 entries of 128 bytes at the end of the disk
    _zero_file(dest, _PART_START + sectors + backup_gpt)
    disk_guid, part_guid, serial = _ids("uefimg", script)
    _run(tc, ["sfdisk", "--quiet", "--no-reread", "--no-tell-kernel", "--wipe", "never",
              str(dest)],
         workdir,
         stdin=(
             "label: gpt\n"
             f"label-id: {str(disk_guid).upper()}\n"
             f"start={_PART_START}, size={sectors}, type={_ESP_TYPE_GUID}, "
             f'uuid={str(part_guid).upper()}, name="EFI system partition"\n'
         ).encode())  # fmt: skip
    _make_fat(tc, dest, tree, sectors=sectors, offset=_PART_START, serial=serial, workdir=workdir)


KRN_README = """\
Zero-OS network boot for machines that already boot with GRUB or syslinux (BIOS).

  zos/ipxe.lkrn   iPXE, a network boot loader that loads like a Linux kernel
  zos/zos.ipxe    the boot script for your farm, which iPXE runs
  zos/IPXE-LICENSE.txt  iPXE's licence (GPL) and copyright notices

Install, as root:
  tar -xf THIS_FILE.tar -C /boot          (creates /boot/zos/)

GRUB: add this entry to /etc/grub.d/40_custom, then run update-grub
(or grub2-mkconfig -o /boot/grub2/grub.cfg):

  menuentry "Zero-OS" {
      linux16 /boot/zos/ipxe.lkrn
      initrd16 /boot/zos/zos.ipxe
  }

If /boot is a partition of its own, write /zos/ipxe.lkrn and /zos/zos.ipxe instead.
linux16 exists only in GRUB for BIOS (legacy/CSM) boot; for UEFI use the UEFI image.

syslinux / extlinux: copy both files next to syslinux.cfg and add:

  LABEL zos
    KERNEL ipxe.lkrn
    APPEND initrd=zos.ipxe
"""


@_builder
def build_krn(script: bytes, dest: Path, workdir: Path, tc: Toolchain) -> None:
    """Tar for GRUB/syslinux users: ipxe.lkrn + the script as its initrd + how to boot it."""
    members = [
        ("zos/README.txt", KRN_README.encode()),
        ("zos/ipxe.lkrn", _read(tc.ipxe_lkrn)),
        ("zos/zos.ipxe", script),
        (f"zos/{LICENSE_NAME}", _read(tc.ipxe_license)),
    ]
    with (
        open(dest, "wb") as raw,
        tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar,
    ):
        tar.addfile(tar_member("zos", 0, directory=True))
        for name, data in members:
            tar.addfile(tar_member(name, len(data)), io.BytesIO(data))


def tar_member(name: str, size: int, *, directory: bool = False) -> tarfile.TarInfo:
    """A tar member with nothing from the build host in it: fixed time, owner, mode."""
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = EPOCH
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    if directory:
        info.type = tarfile.DIRTYPE
        info.mode = 0o755
    else:
        info.mode = 0o644
    return info


def _plain(attribute: str) -> BuildFunction:
    """Builder for iPXE as shipped: a copy of one binary, the script is not used."""

    def build(script: bytes, dest: Path, workdir: Path, tc: Toolchain) -> None:
        _place(dest, getattr(tc, attribute))

    build.__doc__ = f"Copy of the toolchain's {attribute}, nothing embedded."
    return _builder(build, embeds_script=False)


def _standalone_efi() -> ModuleType | None:
    """The ``standalone_efi`` module beside this one, or None if it is not installed.

    Imported only when the ``uefi`` format is used, so the other formats never depend on
    it (nor on GRUB, which it needs).
    """
    module_name = f"{__package__}.standalone_efi" if __package__ else "standalone_efi"
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            return None
        raise  # the module exists but is broken: say so, do not hide it


@_builder
def build_standalone_efi(script: bytes, dest: Path, workdir: Path, tc: Toolchain) -> None:
    """One .efi that runs the script on its own (built by artifacts.standalone_efi)."""
    module = _standalone_efi()
    if module is None:
        raise BuildError("the uefi format is not available: artifacts/standalone_efi.py is missing")
    module.build_standalone_efi(script, dest, workdir, tc)


def _standalone_efi_problems(tc: Toolchain) -> list[str]:
    module = _standalone_efi()
    if module is None:
        return ["artifacts/standalone_efi.py is missing: the uefi format cannot build"]
    return list(module.check_standalone_efi_tools(tc))


def _standalone_efi_fingerprint(tc: Toolchain) -> str:
    module = _standalone_efi()
    return "missing" if module is None else module.standalone_efi_fingerprint(tc)


_LKRN, _EFI = ("ipxe_lkrn",), ("ipxe_efi",)

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
                "ipxe_efi",
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
            needs=("ipxe_lkrn", "ipxe_efi", "ipxe_license", "syslinux_mbr"),
            tools=("sfdisk", "mformat", "mmd", "mcopy", "syslinux"),
        ),
        Format(
            name="uefimg",
            extension="img",
            content_type="application/octet-stream",
            summary="UEFI-only disk image (GPT + EFI system partition) for disks or sticks",
            build=build_uefimg,
            needs=("ipxe_efi", "ipxe_license"),
            tools=("sfdisk", "mformat", "mmd", "mcopy"),
        ),
        Format(
            name="krn",
            extension="tar",
            content_type="application/x-tar",
            summary="iPXE kernel + script for an existing GRUB or syslinux (BIOS boot)",
            build=build_krn,
            needs=("ipxe_lkrn", "ipxe_license"),
        ),
        Format(
            name="uefi",
            extension="efi",
            content_type="application/efi",
            summary="Single EFI program for a UEFI boot entry or shell",
            build=build_standalone_efi,
            needs=_EFI,
            problems=_standalone_efi_problems,
            fingerprint=_standalone_efi_fingerprint,
        ),
        Format(
            name="lkrn-plain",
            extension="lkrn",
            content_type="application/octet-stream",
            summary="Plain iPXE kernel, no script inside",
            build=_plain("ipxe_lkrn"),
            needs=_LKRN,
            embeds_script=False,
        ),
        Format(
            name="efi-plain",
            extension="efi",
            content_type="application/efi",
            summary="Plain iPXE EFI program, no script inside",
            build=_plain("ipxe_efi"),
            needs=_EFI,
            embeds_script=False,
        ),
    )
}


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
        digest.update(f"{tool} {_tool_version(tc, tool)}\n".encode())
    for fmt in formats:
        if fmt.fingerprint is not None:
            digest.update(f"{fmt.name} {fmt.fingerprint(tc)}\n".encode())
    return digest.hexdigest()


def file_sha256(path: Path) -> str:
    """sha256 of a file's content, remembered while its size, mtime and inode stay the same."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return "missing"
    return _file_sha256_cached(str(path), st.st_size, st.st_mtime_ns, st.st_ino)


@functools.lru_cache(maxsize=64)
def _file_sha256_cached(path: str, size: int, mtime_ns: int, inode: int) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _tool_version(tc: Toolchain, tool: str) -> str:
    found = shutil.which(tool, path=tc.tool_path)
    if found is None:
        return "missing"
    st = os.stat(found)
    return _tool_version_cached(found, st.st_size, st.st_mtime_ns, st.st_ino)


@functools.lru_cache(maxsize=64)
def _tool_version_cached(path: str, size: int, mtime_ns: int, inode: int) -> str:
    flag = _VERSION_FLAGS.get(os.path.basename(path), "--version")
    try:
        result = subprocess.run(
            [path, flag], capture_output=True, timeout=10, check=False,
            env={"PATH": os.environ.get("PATH", ""), "LC_ALL": "C"},
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    version = (result.stdout + result.stderr).decode("utf-8", "replace").strip()
    # The executable's own bytes too: a Debian rebuild may change the output (syslinux
    # carries ldlinux.sys inside itself) without changing the version it reports.
    with open(path, "rb") as fh:
        exe = hashlib.file_digest(fh, "sha256").hexdigest()
    return f"{exe} {hashlib.sha256(version.encode()).hexdigest()}"


__all__ = [
    "AUTOEXEC",
    "BUILDER_VERSION",
    "EPOCH",
    "FORMATS",
    "BuildError",
    "Format",
    "Toolchain",
    "check_toolchain",
    "file_sha256",
    "tar_member",
    "toolchain_fingerprint",
]
