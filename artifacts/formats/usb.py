"""The USB disk image for dd: MBR + one FAT16 partition, BIOS (syslinux) and UEFI."""

from __future__ import annotations

from pathlib import Path

from .geometry import (
    FAT_SLACK,
    PART_START,
    SECTOR,
    SYSLINUX_FILES,
    fat_sectors,
    ids,
    make_fat,
    partition,
    tree_sizes,
    zero_file,
)
from .parts import AUTOEXEC, LICENSE_NAME, esp_tree, media_builder, syslinux_cfg
from .toolchain import Toolchain, place, read, run


@media_builder
def build_usb(script: bytes, dest: Path, workdir: Path, tc: Toolchain) -> None:
    """Raw disk for dd: MBR (syslinux mbr.bin) + one active FAT16 partition that boots
    ipxe.lkrn via syslinux under BIOS and BOOTX64.EFI under UEFI, one shared script."""
    script_path = f"/EFI/BOOT/{AUTOEXEC}"
    tree = workdir / "usb"
    esp_tree(tree, script, tc)
    place(tree / "ipxe.lkrn", tc.ipxe_lkrn)
    place(tree / "syslinux.cfg", syslinux_cfg("/ipxe.lkrn", script_path))
    place(tree / LICENSE_NAME, tc.ipxe_license)
    mbr_code = read(tc.syslinux_mbr)[:440]

    sizes, dirs = tree_sizes(tree)
    sizes.append(SYSLINUX_FILES)
    sectors = fat_sectors(sizes, dirs, fat16=True, slack=FAT_SLACK)
    zero_file(dest, PART_START + sectors)
    _, _, serial = ids("usb", script)
    partition(tc, dest, (
        "label: dos\n"
        f"label-id: 0x{serial:08x}\n"
        f"start={PART_START}, size={sectors}, type=e, bootable\n"
    ), workdir)  # fmt: skip
    make_fat(tc, dest, tree, sectors=sectors, offset=PART_START, serial=serial, workdir=workdir)
    run(tc, ["syslinux", "--offset", str(PART_START * SECTOR), "--install", str(dest)],
         workdir)  # fmt: skip
    # syslinux's MBR code boots the active partition; the table after byte 440 stays.
    with open(dest, "r+b") as fh:
        fh.write(mbr_code)
