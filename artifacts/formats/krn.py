"""The parts for GRUB and syslinux (BIOS), ``/krn-tar/...``: a tar of ipxe.lkrn, the script
as its initrd, and how to boot them. ``/krn/...`` is the same in one file (``lkrn.py``)."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

from .parts import LICENSE_NAME, media_builder
from .toolchain import EPOCH, Toolchain, read

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


@media_builder
def build_krn(script: bytes, dest: Path, workdir: Path, tc: Toolchain) -> None:
    """Tar for GRUB/syslinux users: ipxe.lkrn + the script as its initrd + how to boot it."""
    members = [
        ("zos/README.txt", KRN_README.encode()),
        ("zos/ipxe.lkrn", read(tc.ipxe_lkrn)),
        ("zos/zos.ipxe", script),
        (f"zos/{LICENSE_NAME}", read(tc.ipxe_license)),
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
