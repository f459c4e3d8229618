"""Registering kernel files into the store (`ZOSBOOT_KERNELS_DIR`)."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files import File

from . import signatures
from .digests import sha256_path
from .models import Arch, BranchLink, Kernel
from .models.kernels import ARCH_HEADER_BYTES, arch_mismatch, detect_arch
from .validators import validate_kernel_name


class KernelConflict(Exception):
    """A kernel of that name exists with other content; kernel files are never replaced."""


def check_kernel_name(name: str) -> None:
    """A usable name for a new kernel: the kernel-name alphabet, and not a branch link's
    name (both are served at /kernel/NAME). Raises ValidationError."""
    validate_kernel_name(name)
    if BranchLink.objects.filter(name=name).exists():
        raise ValidationError(
            f"{name} is a branch link; a kernel needs a name of its own", code="taken"
        )


def file_arch(path: Path, name: str, declared: str | None = None) -> Arch:
    """The architecture a new kernel file is registered as: `declared` (amd64 or arm64), or
    what its header says, or amd64. ValidationError when the header says another one than
    declared (an arm64 build imported as amd64 would never boot)."""
    if declared is not None and declared not in Arch.values:
        raise ValidationError(
            f"unknown architecture {declared!r}: use {' or '.join(Arch.values)}", code="arch"
        )
    with open(path, "rb") as handle:
        detected = detect_arch(handle.read(ARCH_HEADER_BYTES))
    if declared is None:
        return detected or Arch.AMD64
    refusal = arch_mismatch(name, declared, detected)
    if refusal is not None:
        raise refusal
    return Arch(declared)


def register_kernel(
    source: Path,
    name: str | None = None,
    notes: str = "",
    arch: str | None = None,
    signature: bytes | str | None = None,
) -> tuple[Kernel, bool]:
    """Copy `source` into the store under `name` and hash it; (kernel, created).

    `arch` is what it is built for (default: what its header says, else amd64); a header that
    says otherwise is refused (ValidationError), and so is a release `signature` that does not
    verify (signatures.SignatureError). Registering the same bytes under the same
    name again is a no-op, so imports can be re-run. A file already in the store under its
    own name is registered in place, not copied.
    """
    name = name or source.name
    check_kernel_name(name)
    arch = file_arch(source, name, arch)
    signed = signatures.checked(source, signature) if signature else ("", "")
    sha256, size = sha256_path(source)
    existing = Kernel.objects.filter(name=name).first()
    if existing is not None:
        if existing.sha256 != sha256:
            raise KernelConflict(
                f"kernel {name} already exists with sha256 {existing.sha256[:16]}...; "
                "kernel files are immutable, register the new one under another name"
            )
        return signatures.add_to(existing, *signed), False
    kernel = Kernel(name=name, sha256=sha256, size=size, notes=notes, arch=arch,
                    signature=signed[0], signer=signed[1])  # fmt: skip
    in_store = Path(settings.ZOSBOOT_KERNELS_DIR) / name
    if in_store.exists() and in_store.resolve() == source.resolve():
        kernel.file.name = name
    else:
        with source.open("rb") as handle:
            kernel.file.save(name, File(handle), save=False)
    kernel.save()
    return kernel, True
