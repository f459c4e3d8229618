"""The ``uefi`` download: one .efi file that starts iPXE and runs the farm's script.

Why it is built this way (DESIGN.md, "iPXE"): Debian's iPXE EFI binary has no embedded
script and iPXE is never compiled here. The other UEFI media put ``autoexec.ipxe`` next to
iPXE, but this download is a *single file*: a farmer copies it alone to an ESP as
``\\EFI\\BOOT\\BOOTX64.EFI``, or the firmware fetches it by UEFI HTTP boot, so there is no
"next to it". What is left is the other way iPXE takes a script from its caller: the UEFI
*load options* of its image. iPXE's EFI start-up registers them as a script (the first
word is dropped as the image name, the rest is run line by line, so labels, ``goto`` and
loops work) and runs it.

Something has to load iPXE with such load options, from inside the one file. That is
Debian's unsigned GRUB for x86-64 EFI (``grub-efi-amd64-bin``), assembled per request by
``grub-mkimage`` with a memdisk: a tar holding iPXE and a ``grub.cfg`` whose
``chainloader`` passes the script, newlines and all, as iPXE's load options. GRUB copies
its arguments to the UCS-2 load options one byte per character; single-quoted GRUB words
keep every byte literally (``$``, ``"``, ``&&``, ``#``, newlines), only ``'`` itself needs
the shell-style ``'\\''`` escape.

GRUB's ``chainloader`` insists on a firmware device for ``root`` (it becomes iPXE's
DeviceHandle); the memdisk is none. So the config takes the device GRUB itself was loaded
from (``$cmdpath``), as the *whole* disk or CD when it was a partition: iPXE looks for
``autoexec.ipxe`` on the file system of its DeviceHandle, and one found there would run
instead of our script (seen in QEMU); a whole disk has no file system. When network-booted
(UEFI HTTP or PXE) ``$cmdpath`` is ``(http,...)``/``(tftp,...)`` and the NIC serves.
Should all that fail, every device GRUB sees is tried.

Per request this costs one ``grub-mkimage`` run (~20 ms, no compiler, no root, no loop
mounts, no network) and is reproducible: the tar is written here with fixed metadata and
``grub-mkimage`` adds no timestamps, so the same script gives the same bytes.

The same for arm64 machines (``arch="arm64"``, the download's ``?arch=arm64``): Debian's
``ipxe-arm64.efi`` in a GRUB assembled with ``--format arm64-efi`` from the modules of
``grub-efi-arm64-bin``. That package is for arm64 systems only, so setup/install-ipxe.sh
unpacks its modules next to the iPXE binaries; the system's ``grub-mkimage`` builds images for
any platform it has modules for. The file then goes to ``\\EFI\\BOOT\\BOOTAA64.EFI``.

Plain Python, no Django: the builder, the cache and plain tests call this.
Secure Boot must be off (GRUB from grub-efi-*-bin and Debian's iPXE are unsigned).
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .grub_chain import check_script, extract_script, make_memdisk, render_grub_cfg
from .toolchain import BuildError, Toolchain, file_sha256

#: Part of the fingerprint: bump it whenever a change here changes the bytes of an image.
STANDALONE_EFI_VERSION = "1"

#: Debian's ``grub-efi-amd64-bin`` module directory.
DEFAULT_GRUB_DIR = Path("/usr/lib/grub/x86_64-efi")
#: Debian's full x86-64 EFI build of iPXE (native drivers + SNP, HTTPS).
IPXE_EFI_NAME = "ipxe-amd64.efi"


@dataclass(frozen=True)
class EfiArch:
    """What one architecture's single EFI program is made of."""

    #: grub-mkimage's --format.
    grub_format: str
    #: Debian's iPXE EFI build for it, in the iPXE directory.
    ipxe_name: str
    #: Where its GRUB modules are, relative to the iPXE directory (None: DEFAULT_GRUB_DIR).
    grub_subdir: str | None
    #: What to do when the modules are missing.
    grub_hint: str


#: The architectures the ``uefi`` download is built for; amd64 is the default.
EFI_ARCHES = {
    "amd64": EfiArch(
        "x86_64-efi", IPXE_EFI_NAME, None, "install the Debian package grub-efi-amd64-bin"
    ),
    "arm64": EfiArch(
        "arm64-efi", "ipxe-arm64.efi", "grub/arm64-efi",
        "run setup/install-ipxe.sh, which unpacks Debian's grub-efi-arm64-bin",
    ),
}  # fmt: skip

#: GRUB modules built into the image; grub-mkimage adds their dependencies.
#: normal: the script parser (quotes, ``for``, ``if``); regexp: ``$cmdpath`` parsing and
#: the ``(*)`` device wildcard; chain: ``chainloader``; memdisk + tar: the embedded files;
#: part_*: opening partitions as ``root``; efinet/http/tftp: ``root`` when GRUB itself was
#: network-booted; echo/sleep/minicmd/test: messages, the pause, ``exit``, ``[``.
GRUB_MODULES = (
    "normal",
    "regexp",
    "chain",
    "memdisk",
    "tar",
    "part_gpt",
    "part_msdos",
    "efinet",
    "http",
    "tftp",
    "echo",
    "sleep",
    "minicmd",
    "test",
)

_PREFIX = "(memdisk)/boot/grub"
_TIMEOUT = 60.0


def _arch(arch: str) -> EfiArch:
    try:
        return EFI_ARCHES[arch]
    except KeyError:
        raise BuildError(f"no single EFI program for {arch!r} (amd64 or arm64)") from None


def _resolve(
    ipxe: Path | str | Toolchain,
    timeout: float | None = None,
    arch: str = "amd64",
    grub_dir: Path | None = None,
) -> tuple[Path, Path, str | None, float]:
    """iPXE EFI path, GRUB module dir, grub-mkimage search PATH, timeout, from a dir or a
    Toolchain, for one architecture.

    formats.py calls builders with its Toolchain; other callers pass the iPXE directory.
    """
    spec = _arch(arch)
    if isinstance(ipxe, Toolchain):
        ipxe_dir, tool_path = ipxe.ipxe_dir, ipxe.tool_path
        limit = timeout if timeout is not None else ipxe.timeout
    else:
        ipxe_dir, tool_path = Path(ipxe), None
        limit = timeout if timeout is not None else _TIMEOUT
    if grub_dir is None:
        grub_dir = ipxe_dir / spec.grub_subdir if spec.grub_subdir else DEFAULT_GRUB_DIR
    return ipxe_dir / spec.ipxe_name, Path(grub_dir), tool_path, limit


def _which_mkimage(grub_mkimage: str | None, tool_path: str | None) -> str:
    """Absolute path of grub-mkimage, or a BuildError naming its Debian package."""
    found = shutil.which(grub_mkimage or "grub-mkimage", path=tool_path)
    if found is None:
        raise BuildError(
            f"{grub_mkimage or 'grub-mkimage'} not found (install the Debian package grub-common)"
        )
    return found


def build_standalone_efi(
    script: bytes,
    dest: Path,
    workdir: Path,
    ipxe_dir: Path | Toolchain,
    *,
    grub_dir: Path | None = None,
    grub_mkimage: str | None = None,
    timeout: float | None = None,
    arch: str = "amd64",
) -> None:
    """Write to ``dest`` one .efi for ``arch`` (amd64, arm64) that runs ``script`` in iPXE,
    self-contained.

    ``ipxe_dir`` is the directory with ``ipxe-amd64.efi``/``ipxe-arm64.efi`` (or formats'
    Toolchain), ``grub_dir`` GRUB's modules for the architecture (default: Debian's x86_64-efi
    directory, or ``grub/arm64-efi`` in the iPXE directory), ``grub_mkimage`` the tool (name
    or path; found on PATH by default). ``workdir`` is an existing scratch directory private
    to the caller. ``dest`` is overwritten; publishing it atomically is the caller's job.
    Raises BuildError with an operator-readable message on any failure.
    """
    check_script(script)
    ipxe_efi, grub_dir, tool_path, limit = _resolve(ipxe_dir, timeout, arch, grub_dir)
    problems = _missing_files(ipxe_efi, grub_dir, arch)
    if problems:
        raise BuildError("; ".join(problems))
    tool = _which_mkimage(grub_mkimage, tool_path)
    try:
        payload = ipxe_efi.read_bytes()
        scratch = Path(tempfile.mkdtemp(prefix="standalone-efi-", dir=workdir))
    except OSError as exc:
        raise BuildError(f"{exc.strerror or exc} ({exc.filename})") from exc
    try:
        memdisk = scratch / "memdisk.tar"
        out = scratch / "out.efi"
        memdisk.write_bytes(make_memdisk(script, payload))
        argv = [
            tool, "--format", _arch(arch).grub_format, "--directory", str(grub_dir),
            "--prefix", _PREFIX, "--memdisk", str(memdisk), "--output", str(out),
            *GRUB_MODULES,
        ]  # fmt: skip
        env = {"PATH": os.environ.get("PATH", ""), "LC_ALL": "C", "TZ": "UTC",
               "HOME": str(scratch), "TMPDIR": str(scratch)}  # fmt: skip
        try:
            result = subprocess.run(
                argv, capture_output=True, cwd=scratch, env=env, timeout=limit, check=False
            )
        except subprocess.TimeoutExpired as exc:
            raise BuildError(f"grub-mkimage did not finish within {limit:g} s") from exc
        if result.returncode != 0 or not out.is_file():
            said = (result.stderr or result.stdout).decode("utf-8", "replace").strip()
            said = "\n".join(said.splitlines()[-10:]) or "no message"
            raise BuildError(f"grub-mkimage failed (exit status {result.returncode}): {said}")
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(out, dest)
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename else ""
        raise BuildError(f"{exc.strerror or exc}{where}") from exc
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _missing_files(ipxe_efi: Path, grub_dir: Path, arch: str = "amd64") -> list[str]:
    """Readable problems with the input files: iPXE, GRUB's module list and modules."""
    problems = []
    hint = _arch(arch).grub_hint
    if not ipxe_efi.is_file():
        problems.append(f"{ipxe_efi} not found (run setup/install-ipxe.sh)")
    if not (grub_dir / "moddep.lst").is_file():
        problems.append(f"{grub_dir}/moddep.lst not found ({hint})")
        return problems
    missing = [m for m in _all_modules(grub_dir) if not (grub_dir / f"{m}.mod").is_file()]
    if missing:
        problems.append(
            f"GRUB modules missing from {grub_dir}: {', '.join(missing)} "
            f"({hint.replace('install', 'reinstall', 1) if arch == 'amd64' else hint})"
        )
    return problems


def _all_modules(grub_dir: Path) -> list[str]:
    """GRUB_MODULES plus everything they depend on, per ``moddep.lst``, sorted."""
    deps: dict[str, list[str]] = {}
    for line in (grub_dir / "moddep.lst").read_text().splitlines():
        name, _, rest = line.partition(":")
        deps[name.strip()] = rest.split()
    seen: set[str] = set()
    todo = list(GRUB_MODULES)
    while todo:
        mod = todo.pop()
        if mod not in seen:
            seen.add(mod)
            todo.extend(deps.get(mod, []))
    return sorted(seen)


def check_standalone_efi_tools(
    ipxe_dir: Path | Toolchain,
    *,
    grub_dir: Path | None = None,
    grub_mkimage: str | None = None,
    arch: str = "amd64",
) -> list[str]:
    """Readable problems that would make :func:`build_standalone_efi` fail (empty: fine).

    Meant for start-up checks, so a missing package shows before a farmer asks.
    """
    ipxe_efi, grub_dir, tool_path, _ = _resolve(ipxe_dir, arch=arch, grub_dir=grub_dir)
    problems = _missing_files(ipxe_efi, grub_dir, arch)
    try:
        _which_mkimage(grub_mkimage, tool_path)
    except BuildError as exc:
        problems.append(str(exc))
    return problems


def standalone_efi_fingerprint(
    ipxe_dir: Path | Toolchain,
    *,
    grub_dir: Path | None = None,
    grub_mkimage: str | None = None,
    arch: str = "amd64",
) -> str:
    """sha256 over everything besides the script that decides the image's bytes.

    iPXE and the GRUB modules by content, grub-mkimage by reported version (its first
    line, e.g. "grub-mkimage (GRUB) 2.06-13+deb12u2"), and STANDALONE_EFI_VERSION. For
    cache keys: an upgraded grub-efi-amd64-bin or ipxe package means new images.
    """
    ipxe_efi, grub_dir, tool_path, _ = _resolve(ipxe_dir, arch=arch, grub_dir=grub_dir)
    digest = hashlib.sha256(f"zosboot standalone efi {STANDALONE_EFI_VERSION}\n".encode())
    if arch != "amd64":  # amd64 keys stay what they were
        digest.update(f"arch {arch}\n".encode())
    digest.update(f"ipxe {file_sha256(ipxe_efi)}\n".encode())
    digest.update(f"moddep {file_sha256(grub_dir / 'moddep.lst')}\n".encode())
    modules = _all_modules(grub_dir) if (grub_dir / "moddep.lst").is_file() else []
    for mod in modules:
        digest.update(f"{mod} {file_sha256(grub_dir / f'{mod}.mod')}\n".encode())
    found = shutil.which(grub_mkimage or "grub-mkimage", path=tool_path)
    digest.update(f"grub-mkimage {_version(found) if found else 'missing'}\n".encode())
    return digest.hexdigest()


@functools.lru_cache(maxsize=8)
def _version(tool: str) -> str:
    try:
        result = subprocess.run(
            [tool, "--version"], capture_output=True, timeout=10, check=False,
            env={"PATH": os.environ.get("PATH", ""), "LC_ALL": "C"},
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    out = (result.stdout + result.stderr).decode("utf-8", "replace").strip()
    return out.splitlines()[0] if out else "unknown"


__all__ = [
    "DEFAULT_GRUB_DIR",
    "EFI_ARCHES",
    "GRUB_MODULES",
    "IPXE_EFI_NAME",
    "STANDALONE_EFI_VERSION",
    "build_standalone_efi",
    "check_script",
    "check_standalone_efi_tools",
    "extract_script",
    "make_memdisk",
    "render_grub_cfg",
    "standalone_efi_fingerprint",
]
