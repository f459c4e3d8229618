"""Kernel uploads that never sit whole in memory: streamed into the store's incoming
directory, hashed on the way, refused once over the size limit, and registered by a link
into the store (atomic, and never over a file that is already there)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler, SkipFile, StopUpload
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.http.multipartparser import MultiPartParser, MultiPartParserError

from . import signatures
from .digests import sha256_path
from .kernels import KernelConflict, check_kernel_name, file_arch
from .models import Kernel

# The optional multipart field with the release signature (a text field or a small file).
SIGNATURE_FIELD = "signature"


class UploadRefused(Exception):
    """The upload cannot be taken; `status` is the HTTP status (400, 413)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Upload:
    """A kernel received whole into the incoming directory, not yet in the store."""

    name: str
    path: Path
    sha256: str
    size: int

    def discard(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def incoming_dir() -> Path:
    path = Path(settings.ZOSBOOT_KERNELS_DIR) / ".incoming"
    path.mkdir(parents=True, exist_ok=True)
    return path


class _Handler(FileUploadHandler):
    def __init__(self, request: HttpRequest, field: str, limit: int) -> None:
        super().__init__(request)
        self.field, self.limit = field, limit
        self.upload: Upload | None = None
        self.too_large = False
        self._file = None
        self.signature: bytearray | None = None
        self._in_signature = False

    def new_file(self, field_name, file_name, *args, **kwargs) -> None:
        super().new_file(field_name, file_name, *args, **kwargs)
        if field_name == SIGNATURE_FIELD and self.signature is None:
            self.signature = bytearray()  # a release signature sent as a file: kept in memory
            self._in_signature = True
            return
        if field_name != self.field or self.upload is not None or self._file is not None:
            raise SkipFile()
        self._file = tempfile.NamedTemporaryFile(  # noqa: SIM115 (closed in file_complete)
            dir=incoming_dir(), prefix="upload-", delete=False
        )
        self._digest = hashlib.sha256()
        self._size = 0

    def receive_data_chunk(self, raw_data: bytes, start: int) -> None:
        if self._in_signature:
            if len(self.signature) <= signatures.MAX_SIGNATURE_BYTES:
                self.signature += raw_data[: signatures.MAX_SIGNATURE_BYTES + 1]
            return
        self._size += len(raw_data)
        if self._size > self.limit:
            self.too_large = True
            self.upload_interrupted()
            raise StopUpload(connection_reset=True)
        self._digest.update(raw_data)
        self._file.write(raw_data)

    def file_complete(self, file_size: int) -> None:
        if self._in_signature:
            self._in_signature = False
            return
        self._file.close()
        self.upload = Upload(
            self.file_name, Path(self._file.name), self._digest.hexdigest(), self._size
        )
        self._file = None

    def upload_interrupted(self) -> None:
        if self._file is not None:
            self._file.close()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._file.name)
            self._file = None


class _Parser(MultiPartParser):
    def sanitize_file_name(self, file_name: str) -> str | None:
        # The name exactly as sent: one with a path in it is refused, not cut down to its
        # last part (the handler never uses it as a path).
        return file_name or None


def receive(request: HttpRequest, field: str = "kernel") -> tuple[Upload, dict[str, str]]:
    """The kernel in multipart field `field`, streamed to disk; (upload, the other fields)."""
    limit = settings.ZOSBOOT_MAX_KERNEL_BYTES
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise UploadRefused(400, "the Content-Length header is not a number") from None
    if length > limit + 1024 * 1024:  # the file plus a generous allowance for the form
        raise UploadRefused(413, f"the upload is larger than the limit of {limit} bytes")
    if not request.content_type.startswith("multipart/form-data"):
        raise UploadRefused(400, f"send the kernel as multipart/form-data, field {field}")
    handler = _Handler(request, field, limit)
    try:
        fields, _files = _Parser(request.META, request, [handler], request.encoding).parse()
    except MultiPartParserError as exc:
        handler.upload_interrupted()
        raise UploadRefused(400, f"the upload could not be read: {exc}") from None
    if handler.too_large:
        raise UploadRefused(413, f"the upload is larger than the limit of {limit} bytes")
    if handler.upload is None:
        raise UploadRefused(400, f"no file in the multipart field {field}")
    given = {key: fields.get(key) for key in fields}
    if handler.signature is not None:
        given[SIGNATURE_FIELD] = bytes(handler.signature)
    return handler.upload, given


def register(
    upload: Upload,
    name: str | None = None,
    via: str = "",
    arch: str | None = None,
    signature: bytes | str | None = None,
) -> tuple[Kernel, bool]:
    """Move the upload into the store as kernel `name` (default: the name it was sent under);
    (kernel, created). The same bytes again are a harmless repeat; other bytes under a taken
    name are a KernelConflict, and nothing changes. The upload is gone either way. `via`
    (the token) is noted on a new kernel; `arch` as in `register_kernel` (default: what the
    file's header says, else amd64). A release `signature` is checked against the file first
    (signatures.SignatureError, nothing stored) and kept with the kernel."""
    name = upload.name if name is None else name
    try:
        check_kernel_name(name)
        arch = file_arch(upload.path, name, arch)
        signed = signatures.checked(upload.path, signature) if signature else ("", "")
        existing = Kernel.objects.filter(name=name).first()
        if existing is not None:
            same = _same_or_conflict(existing.name, existing.sha256, upload)
            return signatures.add_to(same, *signed), False
        dest = Path(settings.ZOSBOOT_KERNELS_DIR) / name
        try:
            os.link(upload.path, dest)  # fails if the name is taken: never overwrites
        except FileExistsError:
            _same_or_conflict(name, sha256_path(dest)[0], upload)
        os.chmod(dest, 0o644)
        notes = f"published by {via}" if via else ""
        kernel = Kernel(name=name, sha256=upload.sha256, size=upload.size, notes=notes, arch=arch,
                        signature=signed[0], signer=signed[1])  # fmt: skip
        kernel.file.name = name
        try:
            with transaction.atomic():
                kernel.save()
        except IntegrityError:  # the same name registered by a concurrent upload
            existing = Kernel.objects.get(name=name)
            same = _same_or_conflict(existing.name, existing.sha256, upload)
            return signatures.add_to(same, *signed), False
        return kernel, True
    finally:
        upload.discard()


def _same_or_conflict(name: str, sha256: str, upload: Upload):
    if sha256 != upload.sha256:
        raise KernelConflict(
            f"kernel {name} exists with other content (sha256 {sha256[:16]}...); "
            "kernel files never change, publish the new build under its own name"
        )
    return Kernel.objects.filter(name=name).first()
