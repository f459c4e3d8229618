"""How file bytes (kernels, built images) leave the service.

Django makes every decision (lookup, validation, ETag/304, checksum header, boot history); the
bytes leave by one of two ways, chosen by `ZOSBOOT_FILE_DELIVERY`:

- `nginx`: an empty answer with `X-Accel-Redirect` into an `internal` location of the front
  server, which sends the file with sendfile. No Python worker is held while a node reads a
  100 MB kernel at 1 MB/s, so a boot storm costs the workers one short request per download.
- `django`: Django streams the file itself (development, tests, no front server). A download
  then holds a worker thread for its whole length, so the number of concurrent streams is
  capped across all workers (`ZOSBOOT_MAX_STREAMS`), and each worker keeps threads free for
  scripts. Beyond the cap the answer is 503 with a jittered `Retry-After`: iPXE waits and
  retries by itself, so shedding delays a boot but never fails it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import io
import logging
import os
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from django.conf import settings
from django.http import FileResponse, HttpRequest, HttpResponse, HttpResponseNotModified
from django.utils.cache import patch_cache_control

from . import metrics
from .errors import BootError

logger = logging.getLogger("zosboot.delivery")

# The front server's internal locations: `<prefix><store>/<path in the store>`. They are
# `internal` in the nginx config, so no client can name a file directly.
INTERNAL_PREFIX = "/_zosboot/internal/"
STORES = ("kernels", "artifacts")

NGINX = "nginx"
DJANGO = "django"
DELIVERIES = (NGINX, DJANGO)

# How long a shed download is told to wait: a few seconds, spread so that the nodes shed
# together do not all come back together.
RETRY_AFTER_SECONDS = (2, 7)


@dataclass(frozen=True)
class Download:
    """One file to send: where it is, under which store, and what the client is told."""

    store: str
    relative: str
    size: int
    sha256: str
    filename: str
    content_type: str = "application/octet-stream"
    #: How long caches may keep it: "" is "ask the service every time" (a pointer such as
    #: /kernel/net/prod.efi, an image); a content address is immutable.
    cache_control: str = ""

    @property
    def path(self) -> Path:
        return store_root(self.store) / self.relative

    @property
    def etag(self) -> str:
        return f'"{self.sha256}"'


def store_root(store: str) -> Path:
    if store == "kernels":
        return Path(settings.ZOSBOOT_KERNELS_DIR)
    if store == "artifacts":
        return Path(settings.ZOSBOOT_ARTIFACTS_DIR)
    raise ValueError(f"unknown file store: {store}")


def _tags(header: str) -> list[str]:
    return [tag.strip() for tag in header.split(",") if tag.strip()]


def _opaque(tag: str) -> str:
    return tag[2:] if tag.startswith("W/") else tag


def etag_matches(request: HttpRequest, etag: str) -> bool:
    """If-None-Match holds this version (weak comparison, RFC 9110 8.8.3.2): a 304."""
    tags = _tags(request.headers.get("If-None-Match", ""))
    return "*" in tags or _opaque(etag) in [_opaque(tag) for tag in tags]


def precondition_fails(request: HttpRequest, etag: str) -> bool:
    """If-Match names none of this version (strong comparison: a weak tag never matches)."""
    header = request.headers.get("If-Match")
    if header is None:
        return False
    tags = _tags(header)
    return "*" not in tags and etag not in [tag for tag in tags if not tag.startswith("W/")]


def requested_range(request: HttpRequest, download: Download) -> tuple[int, int] | None:
    """The one byte range a GET asks for, as (first, last), or None for the whole file (no
    Range, several ranges, another unit, or an If-Range naming another version). ValueError
    when the range lies beyond the file (416)."""
    header = request.headers.get("Range", "")
    if request.method != "GET" or not header.startswith("bytes=") or "," in header:
        return None
    if_range = request.headers.get("If-Range")
    if if_range is not None and if_range.strip() != download.etag:
        return None
    first, _, last = header[len("bytes=") :].strip().partition("-")
    try:
        if first:
            start = int(first)
            end = int(last) if last else download.size - 1
        else:
            start, end = max(0, download.size - int(last)), download.size - 1
    except ValueError:
        return None  # malformed: ignored, as RFC 9110 allows
    if start > end and first and last:
        return None
    if start >= download.size or download.size == 0:
        raise ValueError("range not satisfiable")
    return start, min(end, download.size - 1)


def file_response(
    request: HttpRequest,
    download: Download,
    *,
    on_send: Callable[[], None] | None = None,
    headers: dict[str, str] | None = None,
) -> HttpResponse:
    """The answer to GET/HEAD of a file: 412, 304, 416, the headers alone, the bytes, or a
    range of them (206; behind nginx, nginx answers ranges itself).

    `on_send` runs when the bytes of a GET are about to leave (the boot history's kernel
    event), not for HEAD, 304 or a precondition that failed. Raises BootError 503 when the
    file is missing or, in Django delivery, when every stream slot is taken.
    """
    if precondition_fails(request, download.etag):
        response = HttpResponse(
            f"precondition failed: {download.filename} is now version {download.etag}\n",
            status=412,
            content_type="text/plain; charset=utf-8",
        )
        response._has_been_logged = True
    elif etag_matches(request, download.etag):
        response = HttpResponseNotModified()
    else:
        if not download.path.is_file():
            logger.error("%s is missing: %s", download.filename, download.path)
            raise BootError(503, f"{download.filename} is missing on the server")
        response = _send(request, download)
        response["Content-Disposition"] = f'attachment; filename="{download.filename}"'
        response["X-Checksum-Sha256"] = download.sha256
        if on_send is not None and request.method == "GET" and response.status_code < 300:
            on_send()
    response["ETag"] = download.etag
    for name, value in (headers or {}).items():
        response[name] = value
    if download.cache_control:
        response["Cache-Control"] = download.cache_control
    else:
        patch_cache_control(response, no_cache=True)
    return response


def redirect_response(
    request: HttpRequest,
    download: Download,
    location: str,
    *,
    on_send: Callable[[], None] | None = None,
    headers: dict[str, str] | None = None,
) -> HttpResponse:
    """A download decided (and recorded, for a GET) here whose bytes come from `location`: a
    content address on the same server, or a CDN. The checksum headers go with it."""
    response = HttpResponse(status=302)
    response["Location"] = location
    response["ETag"] = download.etag
    response["X-Checksum-Sha256"] = download.sha256
    for name, value in (headers or {}).items():
        response[name] = value
    patch_cache_control(response, no_cache=True)
    if on_send is not None and request.method == "GET":
        on_send()
    return response


def _send(request: HttpRequest, download: Download) -> HttpResponse:
    if settings.ZOSBOOT_FILE_DELIVERY == NGINX:
        response = HttpResponse(content_type=download.content_type)
        response["X-Accel-Redirect"] = quote(
            f"{INTERNAL_PREFIX}{download.store}/{download.relative}"
        )
        return response
    response_range = None
    try:
        response_range = requested_range(request, download)
    except ValueError:
        response = HttpResponse(status=416)
        response["Content-Range"] = f"bytes */{download.size}"
        response._has_been_logged = True
        return response
    if request.method == "HEAD":
        response = HttpResponse(content_type=download.content_type)
        response["Content-Length"] = str(download.size)
    elif response_range is None:
        response = FileResponse(_open_in_slot(download), content_type=download.content_type)
    else:
        start, end = response_range
        opened = _open_in_slot(download)
        opened.seek(start)
        response = FileResponse(
            _Part(opened, end - start + 1), status=206, content_type=download.content_type
        )
        response["Content-Range"] = f"bytes {start}-{end}/{download.size}"
        response["Content-Length"] = str(end - start + 1)
    response["Accept-Ranges"] = "bytes"
    return response


class _Part(io.RawIOBase):
    """`length` bytes of an open file from where it stands; closing it closes the file."""

    def __init__(self, opened: io.FileIO, length: int) -> None:
        super().__init__()
        self._opened, self._left = opened, length

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if self._left <= 0:
            return b""
        size = self._left if size is None or size < 0 else min(size, self._left)
        data = self._opened.read(size)
        self._left -= len(data)
        return data

    def close(self) -> None:
        try:
            self._opened.close()
        finally:
            super().close()


def _open_in_slot(download: Download) -> _SlotFile:
    slot = streams.acquire()
    if slot is None:
        metrics.SHED.inc()
        wait = random.randint(*RETRY_AFTER_SECONDS)  # noqa: S311 (spreading retries, not secrets)
        raise BootError(
            503,
            f"the service is sending kernels to many nodes right now; retrying in {wait} seconds",
            retry_after=wait,
        )
    try:
        opened = _SlotFile(download.path, slot.release)
    except OSError as exc:
        slot.release()
        logger.error("cannot read %s: %s", download.path, exc)
        raise BootError(503, f"{download.filename} could not be read on the server") from None
    metrics.DOWNLOADS_IN_FLIGHT.inc()
    return opened


class _SlotFile(io.FileIO):
    """The file being streamed; closing it (the server does, at the end or on a broken
    connection) frees its stream slot. A real file, so the server can still use sendfile."""

    def __init__(self, path: Path, release: Callable[[], None]) -> None:
        super().__init__(path, "rb")
        self._release: Callable[[], None] | None = release

    def close(self) -> None:
        try:
            super().close()
        finally:
            release, self._release = self._release, None
            if release is not None:
                release()
                metrics.DOWNLOADS_IN_FLIGHT.dec()


class _Slot:
    def __init__(self, fd: int, local: threading.Semaphore) -> None:
        self._fd: int | None = fd
        self._local = local
        self._lock = threading.Lock()

    def release(self) -> None:
        with self._lock:
            if self._fd is None:
                return
            fd, self._fd = self._fd, None
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
        self._local.release()


class StreamSlots:
    """At most `ZOSBOOT_MAX_STREAMS` files streamed at once by all workers together (one
    `flock`ed file per slot under `ZOSBOOT_RUN_DIR`, so a crashed worker's slots free
    themselves), and at most `ZOSBOOT_THREADS - 2` per worker, so each worker always has
    threads left for boot scripts."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._local: threading.Semaphore | None = None
        self._local_size = 0

    def _local_semaphore(self) -> threading.Semaphore:
        size = max(1, settings.ZOSBOOT_THREADS - 2)
        with self._guard:
            if self._local is None or self._local_size != size:
                self._local, self._local_size = threading.BoundedSemaphore(size), size
            return self._local

    def acquire(self) -> _Slot | None:
        """A free slot, or None at once when there is none (never waits)."""
        local = self._local_semaphore()
        if not local.acquire(blocking=False):
            return None
        directory = Path(settings.ZOSBOOT_RUN_DIR) / "streams"
        directory.mkdir(parents=True, exist_ok=True)
        indexes = list(range(max(1, settings.ZOSBOOT_MAX_STREAMS)))
        random.shuffle(indexes)  # spread workers over the slots instead of all probing slot 0
        for index in indexes:
            fd = os.open(directory / f"slot-{index}.lock", os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                os.close(fd)
                if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                    continue
                local.release()
                raise
            return _Slot(fd, local)
        local.release()
        return None


streams = StreamSlots()
