"""Registering kernel files into the store (`ZOSBOOT_KERNELS_DIR`): the one way every path
(the admin, the v1 API, the legacy publishing call, `import_kernel`, `import_legacy`) adds a
kernel, so the same rules hold whoever adds one, and the store and the database agree.

A kernel's file is placed under its name with a hard link (never over a file that is there),
read-only, and its row written after; when the row cannot be written the file placed for it
goes again. The same bytes under the same name again are a harmless repeat (which may bring
the signature the first upload lacked); other bytes under a taken name are a KernelConflict.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from . import signatures
from .digests import sha256_path
from .models import Arch, BranchLink, Kernel
from .models.kernels import ARCH_HEADER_BYTES, KernelRecord, arch_mismatch, detect_arch
from .validators import validate_kernel_name


class KernelConflict(Exception):
    """A kernel of that name exists with other content; kernel files are never replaced."""


def check_kernel_name(name: str) -> None:
    """A usable name for a new kernel: the rules of every name served at `/kernel/<name>`
    (validators.validate_kernel_name), and not a branch link's name. Raises ValidationError."""
    if not name:
        raise ValidationError("a kernel needs a name", code="empty_name")
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


def check_new_kernel(
    source: Path,
    name: str,
    *,
    arch: str | None = None,
    signature: bytes | str | None = None,
    digest: tuple[str, int] | None = None,
) -> tuple[Arch, tuple[str, str] | None, tuple[str, int]]:
    """Everything a kernel must pass before it is stored, in the order a person fixes them:
    (its architecture, its checked signature or None, its (sha256, size)). Raises
    ValidationError (signatures.SignatureError for a signature)."""
    check_kernel_name(name)
    sha256, size = digest or sha256_path(source)
    if size == 0:
        raise ValidationError(f"{name} is empty: a kernel has bytes", code="empty")
    chosen = file_arch(source, name, arch)
    signed = signatures.checked(source, signature) if signature else None
    return chosen, signed, (sha256, size)


def register(
    source: Path,
    name: str | None = None,
    *,
    arch: str | None = None,
    signature: bytes | str | None = None,
    notes: str = "",
    user=None,
    via: str = "",
    digest: tuple[str, int] | None = None,
    move: bool = False,
) -> tuple[Kernel, bool]:
    """Put the file at `source` into the store as kernel `name` (default: its file name);
    (kernel, created).

    `arch` is what it is built for (default: what its header says, else amd64); a header that
    says otherwise is refused (ValidationError), and so are an empty file, a name that
    collides with another URL or a link, and a release `signature` that does not verify
    (signatures.SignatureError). `digest` is the (sha256, size) when the caller hashed the
    bytes on the way in. `move` takes the file (an upload); otherwise it is copied, unless it
    is already in the store under its own name (an import in place). `user`/`via` name who
    registered it in its KernelRecord.
    """
    name = source.name if name is None else name
    arch, signed, (sha256, size) = check_new_kernel(
        source, name, arch=arch, signature=signature, digest=digest
    )
    existing = Kernel.objects.filter(name=name).first()
    if existing is not None:
        return _again(existing, sha256, signed, user=user, via=via), False
    dest = store_path(name)
    placed = _place(source, dest, sha256, move=move)
    kernel = Kernel(name=name, sha256=sha256, size=size, notes=notes, arch=arch)
    kernel.signature, kernel.signer = signed or ("", "")
    kernel.file.name = name
    try:
        with transaction.atomic():
            kernel.save()
            KernelRecord.note_for(
                kernel, KernelRecord.Action.REGISTERED, user=user, via=via,
                note=f"{size} bytes, {arch}, {kernel.signature_label}",
            )  # fmt: skip
    except IntegrityError:
        # The same name registered by a concurrent upload in between: it holds the file now.
        existing = Kernel.objects.filter(name=name).first()
        if existing is None:
            if placed:
                dest.unlink(missing_ok=True)
            raise
        return _again(existing, sha256, signed, user=user, via=via), False
    except BaseException:
        if placed:
            dest.unlink(missing_ok=True)
        raise
    return kernel, True


def store_path(name: str) -> Path:
    return Path(settings.ZOSBOOT_KERNELS_DIR) / name


def _again(existing: Kernel, sha256: str, signed, *, user, via: str) -> Kernel:
    """The same name registered again: the same bytes are a repeat (the signature they bring
    is offered to the kernel), other bytes a conflict."""
    if existing.sha256 != sha256:
        raise KernelConflict(
            f"kernel {existing.name} exists with other content (sha256 "
            f"{existing.sha256[:16]}...); kernel files never change, register the new build "
            "under its own name"
        )
    signatures.offer(existing, signed, user=user, via=via)
    return existing


def _place(source: Path, dest: Path, sha256: str, *, move: bool) -> bool:
    """Put the bytes at `dest`, read-only; whether this call created it. A file already there
    without a row (a crash between file and row, or a concurrent upload of the same name) is
    taken when it holds the same bytes, and is a KernelConflict otherwise."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists() and dest.resolve() == source.resolve():
        return False  # imported in place: the file is the store's already
    staged = source
    if not move:
        handle, staged_name = tempfile.mkstemp(dir=incoming_dir(), prefix="copy-")
        staged = Path(staged_name)
        with os.fdopen(handle, "wb") as out, source.open("rb") as data:
            shutil.copyfileobj(data, out, 1024 * 1024)
    try:
        os.chmod(staged, 0o444)
        try:
            os.link(staged, dest)  # fails if the name is taken: never overwrites
        except FileExistsError:
            found, _ = sha256_path(dest)
            if found != sha256:
                raise KernelConflict(
                    f"the store holds a file named {dest.name} with other content and no "
                    "kernel registered for it; run manage.py check_store"
                ) from None
            return False
        return True
    finally:
        if staged != source or move:
            with contextlib.suppress(FileNotFoundError):
                staged.unlink()


def incoming_dir() -> Path:
    """Where uploads and copies wait, in the store's file system, until they are linked in."""
    path = Path(settings.ZOSBOOT_KERNELS_DIR) / ".incoming"
    path.mkdir(parents=True, exist_ok=True)
    return path


def remove(kernel: Kernel, *, user=None, via: str = "", note: str = "") -> None:
    """Delete a kernel nothing points at (ProtectedError otherwise); its file leaves the store
    once the deletion is committed (provisioning.signals), and a KernelRecord stays."""
    with transaction.atomic():
        kernel.delete()
        KernelRecord.note_for(kernel, KernelRecord.Action.REMOVED, user=user, via=via, note=note)
