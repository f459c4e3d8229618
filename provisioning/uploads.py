"""Kernel uploads that never sit whole in memory: streamed into the store's incoming
directory, hashed on the way, refused once over the size limit, and registered through
`provisioning.kernels.register` (a link into the store: atomic, never over a file that is there).

Whatever happens to the request (a refusal, a parser limit hit after the kernel part, a
connection cut mid-upload), the file received so far is removed before the answer leaves;
`provisioning.store.sweep_incoming` removes what a killed worker left behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.core.exceptions import SuspiciousOperation
from django.core.files.uploadhandler import FileUploadHandler, SkipFile, StopUpload
from django.http import HttpRequest
from django.http.multipartparser import MultiPartParser, MultiPartParserError

from . import kernels, signatures
from .http import log_security_event
from .kernels import incoming_dir
from .models import Kernel

# The optional multipart field with the release signature (a text field or a small file).
SIGNATURE_FIELD = "signature"


class UploadRefused(Exception):
    """The upload cannot be taken; `status` is the HTTP status (400, 411, 413)."""

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

    def discard(self) -> None:
        """Remove everything received: the file being written and a completed one."""
        self.upload_interrupted()
        if self.upload is not None:
            self.upload.discard()
            self.upload = None


class _Parser(MultiPartParser):
    def sanitize_file_name(self, file_name: str) -> str | None:
        # The name exactly as sent: one with a path in it is refused, not cut down to its
        # last part (the handler never uses it as a path).
        return file_name or None


def receive(request: HttpRequest, field: str = "kernel") -> tuple[Upload, dict[str, str]]:
    """The kernel in multipart field `field`, streamed to disk; (upload, the other fields).
    UploadRefused (nothing left on disk) when it cannot be taken."""
    limit = settings.ZOSBOOT_MAX_KERNEL_BYTES
    if "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower():
        raise UploadRefused(
            411, "send the upload with a Content-Length header (curl -F does); chunked "
            "uploads are not taken",
        )  # fmt: skip
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise UploadRefused(400, "the Content-Length header is not a number") from None
    if length <= 0:
        raise UploadRefused(
            400, f"no upload: send the kernel as multipart/form-data, field {field}"
        )
    if length > limit + 1024 * 1024:  # the file plus a generous allowance for the form
        raise UploadRefused(413, f"the upload is larger than the limit of {limit} bytes")
    if not request.content_type.startswith("multipart/form-data"):
        raise UploadRefused(400, f"send the kernel as multipart/form-data, field {field}")
    handler = _Handler(request, field, limit)
    try:
        fields, _files = _Parser(request.META, request, [handler], request.encoding).parse()
    except (MultiPartParserError, SuspiciousOperation, OSError, ValueError) as exc:
        # A malformed form, a parser limit (fields, files, a text field's size), a body too
        # slow or a connection cut mid-upload: whatever arrived goes.
        handler.discard()
        if isinstance(exc, SuspiciousOperation):
            log_security_event(request, exc)
        raise UploadRefused(400, f"the upload could not be read: {_reason(exc)}") from None
    except BaseException:
        handler.discard()
        raise
    if handler.too_large:
        handler.discard()
        raise UploadRefused(413, f"the upload is larger than the limit of {limit} bytes")
    if _cut_short(request):
        handler.discard()
        raise UploadRefused(400, "the upload was cut off before its end; send it again")
    if handler.upload is None:
        handler.discard()
        raise UploadRefused(400, f"no file in the multipart field {field}")
    given = {key: fields.get(key) for key in fields}
    if handler.signature is not None:
        given[SIGNATURE_FIELD] = bytes(handler.signature)
    return handler.upload, given


def _reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, OSError):
        return "the connection broke off mid-upload"
    return text[:200]


def _cut_short(request: HttpRequest) -> bool:
    """Whether the body ended before its Content-Length (the client went away)."""
    stream = getattr(request, "_stream", None)
    read, limit = getattr(stream, "_pos", None), getattr(stream, "limit", None)
    return read is not None and limit is not None and read < limit


def register(
    upload: Upload,
    name: str | None = None,
    via: str = "",
    arch: str | None = None,
    signature: bytes | str | None = None,
) -> tuple[Kernel, bool]:
    """Move the upload into the store as kernel `name` (default: the name it was sent under);
    (kernel, created), as `kernels.register` does. The upload is gone either way. `via` (the
    token) is noted on a new kernel and in its record."""
    name = upload.name if name is None else name
    try:
        return kernels.register(
            upload.path, name, arch=arch, signature=signature, via=via, move=True,
            notes=f"published by {via}" if via else "", digest=(upload.sha256, upload.size),
        )  # fmt: skip
    finally:
        upload.discard()
