"""The UEFI disk image: GPT with one EFI system partition."""

from __future__ import annotations

from pathlib import Path

from .geometry import (
    ESP_TYPE_GUID,
    FAT_SLACK,
    PART_START,
    fat_sectors,
    ids,
    make_fat,
    partition,
    tree_sizes,
    zero_file,
)
from .parts import LICENSE_NAME, esp_tree, media_builder
from .toolchain import Toolchain, place


@media_builder
def build_uefimg(script: bytes, dest: Path, workdir: Path, tc: Toolchain) -> None:
    """UEFI disk image: GPT with one EFI System Partition (FAT16) holding iPXE + script."""
    tree = workdir / "esp"
    esp_tree(tree, script, tc)
    place(tree / LICENSE_NAME, tc.ipxe_license)
    sizes, dirs = tree_sizes(tree)
    sectors = fat_sectors(sizes, dirs, fat16=True, slack=FAT_SLACK)
    backup_gpt = 33  # header + 128 entries of 128 bytes at the end of the disk
    zero_file(dest, PART_START + sectors + backup_gpt)
    disk_guid, part_guid, serial = ids("uefimg", script)
    partition(tc, dest, (
        "label: gpt\n"
        f"label-id: {str(disk_guid).upper()}\n"
        f"start={PART_START}, size={sectors}, type={ESP_TYPE_GUID}, "
        f'uuid={str(part_guid).upper()}, name="EFI system partition"\n'
    ), workdir)  # fmt: skip
    make_fat(tc, dest, tree, sectors=sectors, offset=PART_START, serial=serial, workdir=workdir)
