"""FAT file systems and disk images: sizes, partitions, ids, and filling them with mtools.

Every build is reproducible: the same script and toolchain give the same bytes, so several
instances can build independently and agree on cache keys and ETags. Hence the fixed
timestamps (EPOCH, through the tools' environment) and ids derived from the script.
"""

from __future__ import annotations

import hashlib
import math
import uuid
from collections.abc import Iterable
from pathlib import Path

from .toolchain import Toolchain, run

#: Volume label of every FAT and ISO file system we make (max. 11 characters for FAT).
VOLUME_LABEL = "ZOSBOOT"
SECTOR = 512
# Partitions start at 1 MiB, where every partitioning tool of the last 15 years puts them.
PART_START = 2048
# Geometry written into FAT boot sectors, only used by BIOSes without LBA disk calls:
# 64 heads x 32 sectors (1 MiB cylinders), the usual one for USB disks (syslinux --zip).
_HEADS, _SPT = 64, 32
# FAT16 begins at 4085 clusters; a margin keeps mformat's own rounding above it.
_FAT16_MIN_CLUSTERS = 4085 + 64
# Free room left on writable FAT media, so a farmer can edit the script on the stick.
FAT_SLACK = 64 * 1024
# Room for ldlinux.sys + ldlinux.c32, which the syslinux installer carries inside itself
# and writes (about 180 KiB for syslinux 6.04).
SYSLINUX_FILES = 256 * 1024
ESP_TYPE_GUID = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"


def ids(kind: str, script: bytes) -> tuple[uuid.UUID, uuid.UUID, int]:
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


def fat_sectors(files: Iterable[int], dirs: int, *, fat16: bool, slack: int) -> int:
    """Total sectors of a FAT file system with 512-byte clusters that holds the files.

    One-sector clusters waste the least space. FAT16 is forced for partitions on disk
    images (some firmware is wary of FAT12 outside floppies and El Torito images).
    """
    clusters = sum(math.ceil(size / SECTOR) for size in files)
    clusters += dirs + math.ceil(slack / SECTOR) + 8
    bits = 12
    if fat16 or clusters > 4084 - 64:
        bits = 16
        clusters = max(clusters, _FAT16_MIN_CLUSTERS)
    fat = math.ceil((clusters + 2) * bits / 8 / SECTOR)
    root_dir = 32  # 512 entries
    return 1 + 2 * fat + root_dir + clusters


def make_fat(
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
    target = f"{image}@@{offset * SECTOR}"
    run(tc, [
        "mformat", "-i", target, "-h", str(_HEADS), "-s", str(_SPT), "-T", str(sectors),
        "-H", str(offset), "-c", "1", "-r", "32", "-N", f"{serial:08x}", "-v", VOLUME_LABEL,
        "::",
    ], workdir)  # fmt: skip
    dirs = sorted(p.relative_to(tree).as_posix() for p in tree.rglob("*") if p.is_dir())
    if dirs:
        run(tc, ["mmd", "-i", target, *(f"::/{d}" for d in dirs)], workdir)
    for rel in ["", *dirs]:
        files = sorted(p for p in (tree / rel).iterdir() if p.is_file())
        if files:
            run(tc, ["mcopy", "-Q", "-i", target, *map(str, files), f"::/{rel}"], workdir)


def tree_sizes(tree: Path) -> tuple[list[int], int]:
    """File sizes and directory count of a staging tree, to size the FAT holding it."""
    sizes, dirs = [], 0
    for path in tree.rglob("*"):
        if path.is_dir():
            dirs += 1
        else:
            sizes.append(path.stat().st_size)
    return sizes, dirs


def zero_file(path: Path, sectors: int) -> None:
    """Create a sparse all-zero image of the given size."""
    with open(path, "wb") as fh:
        fh.truncate(sectors * SECTOR)


def partition(tc: Toolchain, image: Path, table: str, workdir: Path) -> None:
    """Write a partition table (sfdisk's script format) into a disk image file."""
    run(tc, ["sfdisk", "--quiet", "--no-reread", "--no-tell-kernel", "--wipe", "never",
             str(image)], workdir, stdin=table.encode())  # fmt: skip
