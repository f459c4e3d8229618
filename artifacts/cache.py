"""The content-addressed image store under `ZOSBOOT_ARTIFACTS_DIR`, and its locks.

Layout: `<dir>/<key[:2]>/<key>.<ext>` for images, `<dir>/tmp/<key>-*/` for builds in progress
(same file system, so publishing is one atomic rename), `<dir>/locks/` for the lock files
that make one build per key and bound the number of builds, across threads and gunicorn
workers alike (`flock` locks belong to an open file, not to a process, so a killed worker's
locks free themselves). Only this module knows the layout; `sweep` tidies it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import shutil
import tempfile
import time
from collections.abc import Collection, Iterator
from pathlib import Path

from django.conf import settings

_POLL_SECONDS = 0.02


class ImageUnavailable(Exception):
    """The image cannot be had right now, for a reason that passes: ask again later."""

    #: Seconds a client is told to wait before asking again.
    retry_after = 60


class Busy(ImageUnavailable):
    """No build slot (or the key's lock) came free in time; the caller should retry later."""

    retry_after = 5


def root() -> Path:
    return Path(settings.ZOSBOOT_ARTIFACTS_DIR)


def path_for(key: str, extension: str) -> Path:
    return root() / key[:2] / f"{key}.{extension}"


def tmp_dir() -> Path:
    path = root() / "tmp"
    path.mkdir(parents=True, exist_ok=True)
    return path


def build_dir(key: str) -> Path:
    """A fresh directory for building `key`; call it while holding `key_lock(key)`."""
    return Path(tempfile.mkdtemp(prefix=f"{key}-", dir=tmp_dir()))


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


# Lock files of keys no longer cached are removed once this old (a build may be starting).
STALE_LOCK_SECONDS = 3600


def abandoned_builds() -> list[Path]:
    """Build directories nobody is building in: their worker was killed mid-build.

    A build runs under its key's lock, so a directory whose key lock is free is litter.
    """
    directory = root() / "tmp"
    if not directory.is_dir():
        return []
    found = []
    for path in directory.iterdir():
        key = path.name.split("-", 1)[0]
        fd = _try_lock(_locks_dir() / f"{key}.lock") if len(key) == 64 else None
        if fd is None and len(key) == 64:
            continue  # being built right now
        if fd is not None:
            _release(fd)
        found.append(path)
    return found


def remove_abandoned_builds() -> int:
    """Remove what killed workers left half-built; how many directories went."""
    litter = abandoned_builds()
    for path in litter:
        shutil.rmtree(path, ignore_errors=True)
    return len(litter)


def strays(known_keys: Collection[str]) -> list[Path]:
    """Files in the store that are not a known image, and old lock files of gone keys."""
    if not root().is_dir():
        return []
    old = time.time() - STALE_LOCK_SECONDS
    found = []
    for shard in root().iterdir():
        if shard.name == "locks":
            found += [
                path
                for path in shard.glob("*.lock")
                if not path.name.startswith("slot-")
                and path.stem not in known_keys
                and path.stat().st_mtime < old
            ]
        elif shard.is_dir() and len(shard.name) == 2:
            found += [p for p in shard.iterdir() if p.name.split(".")[0] not in known_keys]
    return found


def sweep(known_keys: Collection[str], *, dry_run: bool = False) -> list[Path]:
    """Remove abandoned builds and strays; what was (or would be) removed."""
    found = abandoned_builds() + strays(known_keys)
    if not dry_run:
        for path in found:
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                remove(path)
    return found
