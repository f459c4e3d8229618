"""The content-addressed image store under `ZOSBOOT_ARTIFACTS_DIR`, and its locks.

Layout: `<dir>/<key[:2]>/<key>.<ext>` for images, `<dir>/tmp/` for builds in progress (same
file system, so publishing is one atomic rename), `<dir>/locks/` for the lock files that make
one build per key and bound the number of builds, across threads and gunicorn workers alike
(`flock` locks belong to an open file, not to a process).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path

from django.conf import settings

_POLL_SECONDS = 0.02


class Busy(Exception):
    """No build slot (or the key's lock) came free in time; the caller should retry later."""


def root() -> Path:
    return Path(settings.ZOSBOOT_ARTIFACTS_DIR)


def path_for(key: str, extension: str) -> Path:
    return root() / key[:2] / f"{key}.{extension}"


def tmp_dir() -> Path:
    path = root() / "tmp"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _locks_dir() -> Path:
    path = root() / "locks"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _try_lock(path: Path) -> int | None:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            return None
        raise
    return fd


def _release(fd: int) -> None:
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)


@contextlib.contextmanager
def key_lock(key: str, timeout: float) -> Iterator[None]:
    """Held while one request builds `key`; the others wait here, then find the file."""
    path = _locks_dir() / f"{key}.lock"
    deadline = time.monotonic() + timeout
    while (fd := _try_lock(path)) is None:
        if time.monotonic() >= deadline:
            raise Busy("another request is still building this image")
        time.sleep(_POLL_SECONDS)
    try:
        yield
    finally:
        # The lock file stays: removing it could let a third request lock a new inode while
        # a second still holds the old one. prune_artifacts removes stale ones.
        _release(fd)


@contextlib.contextmanager
def build_slot(slots: int, timeout: float) -> Iterator[None]:
    """One of `slots` concurrent builds; waits up to `timeout` seconds for one to free."""
    paths = [_locks_dir() / f"slot-{index}.lock" for index in range(max(1, slots))]
    deadline = time.monotonic() + timeout
    while True:
        for path in paths:
            fd = _try_lock(path)
            if fd is not None:
                try:
                    yield
                finally:
                    _release(fd)
                return
        if time.monotonic() >= deadline:
            raise Busy("too many boot images are being built right now")
        time.sleep(_POLL_SECONDS)


def remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
