"""The hybrid ISO: a CD under BIOS and UEFI, and a USB stick when written raw."""

from __future__ import annotations

from pathlib import Path

from .geometry import VOLUME_LABEL, fat_sectors, ids, make_fat, tree_sizes, zero_file
from .parts import LICENSE_NAME, esp_tree, media_builder, syslinux_cfg
from .toolchain import Toolchain, place, run


@media_builder
def build_iso(script: bytes, dest: Path, workdir: Path, tc: Toolchain) -> None:
    """Hybrid ISO: a CD under BIOS (isolinux) and UEFI (El Torito EFI image), and a USB
    stick under both when written raw (isohybrid MBR + GPT marking the EFI image)."""
    tree = workdir / "iso"
    place(tree / "boot" / "isolinux" / "isolinux.bin", tc.isolinux_bin)
    place(tree / "boot" / "isolinux" / "ldlinux.c32", tc.ldlinux_c32)
    place(tree / "boot" / "isolinux" / "isolinux.cfg",
           syslinux_cfg("/boot/ipxe.lkrn", "/zos.ipxe"))  # fmt: skip
    place(tree / "boot" / "ipxe.lkrn", tc.ipxe_lkrn)
    # At the root, so a farmer who opens the ISO sees what it will do.
    place(tree / "zos.ipxe", script)
    place(tree / LICENSE_NAME, tc.ipxe_license)

    esp = workdir / "esp"
    esp_tree(esp, script, tc)
    sizes, dirs = tree_sizes(esp)
    # Read-only medium: no slack; FAT12 like the EFI images of Debian's own ISOs.
    sectors = fat_sectors(sizes, dirs, fat16=False, slack=0)
    efi_img = tree / "boot" / "efi.img"
    zero_file(efi_img, sectors)
    disk_guid, _, serial = ids("iso", script)
    make_fat(tc, efi_img, esp, sectors=sectors, offset=0, serial=serial, workdir=workdir)

    stamp = "2025010100000000"  # EPOCH as YYYYMMDDhhmmsscc
    run(tc, [
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
