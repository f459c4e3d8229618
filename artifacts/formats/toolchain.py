"""Where the tools and binaries the builders wrap are, how they are run, and what they are.

iPXE is never compiled here (DESIGN.md, "iPXE"): Debian's prebuilt binaries are wrapped
unchanged. This module finds them and the external tools (mtools, xorriso, syslinux, sfdisk),
runs a tool the one safe way (argument list, no shell, timeout, pinned environment), and
fingerprints all of it for cache keys, so an upgraded package means new images.

Plain Python, no Django.
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from provisioning.digests import sha256_path

#: Part of every cache key: bump it whenever a change here changes the bytes of an image.
BUILDER_VERSION = "3"

#: The one timestamp every file, directory and volume inside an image carries
#: (2025-01-01T00:00:00Z), so two builds of the same script are byte-identical.
EPOCH = 1735689600

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
    def ipxe_efi_arm64(self) -> Path:
        """The same build for arm64 (AArch64) UEFI machines."""
        return self.ipxe_dir / "ipxe-arm64.efi"

    @property
    def grub_arm64_dir(self) -> Path:
        """GRUB's arm64-efi modules (from grub-efi-arm64-bin, unpacked by install-ipxe.sh)."""
        return self.ipxe_dir / "grub" / "arm64-efi"

    @property
    def ipxe_license(self) -> Path:
        """Debian's copyright file of the iPXE package: its GPL terms travel with the binaries."""
        return self.ipxe_dir / "copyright"

    @property
    def ipxe_undionly(self) -> Path:
        """iPXE for a BIOS machine's own PXE ROM to load over TFTP (it drives the card through
        the ROM's UNDI interface)."""
        return self.ipxe_dir / "undionly.kpxe"

    @property
    def ipxe_snponly(self) -> Path:
        """iPXE for an x86-64 UEFI machine's own PXE to load over TFTP (it drives the card
        through the firmware's SNP interface, which every UEFI network card has)."""
        return self.ipxe_dir / "snponly.efi"

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


def run(tc: Toolchain, argv: list[str], workdir: Path, stdin: bytes | None = None) -> None:
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


def read(path: Path) -> bytes:
    """Read a toolchain file, with a message that says which one is missing."""
    try:
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise BuildError(f"{path} not found (is the toolchain installed?)") from exc


def place(dest: Path, content: bytes | Path) -> None:
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


def file_sha256(path: Path) -> str:
    """sha256 of a file's content, remembered while its size, mtime and inode stay the same."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return "missing"
    return _file_sha256_cached(str(path), st.st_size, st.st_mtime_ns, st.st_ino)


@functools.lru_cache(maxsize=64)
def _file_sha256_cached(path: str, size: int, mtime_ns: int, inode: int) -> str:
    return sha256_path(Path(path))[0]


def tool_version(tc: Toolchain, tool: str) -> str:
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
    exe = sha256_path(Path(path))[0]
    return f"{exe} {hashlib.sha256(version.encode()).hexdigest()}"
