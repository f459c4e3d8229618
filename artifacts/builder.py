"""Build a boot image once per cache key, and only a bounded number at a time.

`get_or_build(format_name, script)` is the one entry point: a cache hit costs one SELECT and
one UPDATE; a miss builds under the key's lock (concurrent requests for the same key wait for
that build instead of starting their own) and a build slot (a flood of distinct URLs queues
instead of exhausting the machine).

When the disk under the cache is full, the least recently served images make room and the
build is tried once more; failing that, the image is unavailable for now (`CacheFull`),
said in one short line, the details going to the log.
"""

from __future__ import annotations

import errno
import functools
import hashlib
import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db.models import F, Sum
from django.utils import timezone

from provisioning import metrics
from provisioning.digests import sha256_path

from . import cache
from .formats import FORMATS, BuildError, Format, Toolchain, toolchain_fingerprint
from .models import Artifact

logger = logging.getLogger("zosboot.artifacts")

Busy = cache.Busy
ImageUnavailable = cache.ImageUnavailable


class CacheFull(ImageUnavailable):
    """No room for the image even after evicting older ones; come back later."""


# Room a build needs besides the images kept; roughly the largest image plus its scratch.
BUILD_ROOM_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class Result:
    artifact: Artifact
    built: bool  # False: served from the cache


def toolchain() -> Toolchain:
    return _toolchain(str(settings.ZOSBOOT_IPXE_DIR))


@functools.lru_cache(maxsize=4)
def _toolchain(ipxe_dir: str) -> Toolchain:
    return Toolchain(ipxe_dir=Path(ipxe_dir))


# How long a process trusts a computed toolchain fingerprint. Computing it stats every binary
# and module a format uses; an upgraded package is noticed within this many seconds.
FINGERPRINT_TTL_SECONDS = 30.0
_fingerprints: dict[tuple[Toolchain, str], tuple[float, str]] = {}


def fingerprint(tc: Toolchain, format_name: str) -> str:
    now = time.monotonic()
    cached = _fingerprints.get((tc, format_name))
    if cached is not None and cached[0] > now:
        return cached[1]
    value = toolchain_fingerprint(tc, format_name)
    _fingerprints[(tc, format_name)] = (now + FINGERPRINT_TTL_SECONDS, value)
    return value


def cache_key(fmt: Format, script: bytes, tc: Toolchain) -> str:
    """sha256 over everything that changes the bytes: format, tools and binaries, script."""
    digest = hashlib.sha256()
    for part in (fmt.name.encode(), fingerprint(tc, fmt.name).encode(), script):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


def get_or_build(format_name: str, script: str | bytes, label: str = "") -> Result:
    """The image for this script, from the cache or built now.

    Raises ImageUnavailable (Busy, CacheFull: come back later) or BuildError (a failure).
    """
    fmt = FORMATS[format_name]
    data = script.encode() if isinstance(script, str) else script
    tc = toolchain()
    key = cache_key(fmt, data, tc)
    hit = _cached(key)
    if hit is not None:
        return Result(hit, built=False)
    with cache.key_lock(key, timeout=settings.ZOSBOOT_BUILD_WAIT_SECONDS + 60):
        # Built by the request we waited for, or by another instance sharing the directory.
        hit = _cached(key) or _adopt(fmt, key, label)
        if hit is not None:
            return Result(hit, built=False)
        with cache.build_slot(
            settings.ZOSBOOT_MAX_CONCURRENT_BUILDS, timeout=settings.ZOSBOOT_BUILD_WAIT_SECONDS
        ):
            artifact = _build_making_room(fmt, data, key, tc, label)
    evict_to(settings.ZOSBOOT_ARTIFACTS_MAX_BYTES, keep=artifact.key)
    return Result(artifact, built=True)


def _build_making_room(fmt: Format, script: bytes, key: str, tc: Toolchain, label: str):
    # Directories of builds whose worker was killed: nobody else would ever remove them.
    cache.remove_abandoned_builds()
    try:
        return _build(fmt, script, key, tc, label)
    except (BuildError, OSError) as exc:
        if not _out_of_space(exc):
            raise
        logger.warning("no room to build %s %s: %s", fmt.name, label or key[:12], exc)
    freed = _make_room(BUILD_ROOM_BYTES)
    try:
        return _build(fmt, script, key, tc, label)
    except (BuildError, OSError) as exc:
        if not _out_of_space(exc):
            raise
        logger.error(
            "no room to build %s %s after evicting %d image(s): %s",
            fmt.name, label or key[:12], freed, exc,
        )  # fmt: skip
        raise CacheFull("the image cache has no room right now") from exc


def _out_of_space(exc: BaseException) -> bool:
    """A full disk, however the failing tool said it (errno, or text in its message)."""
    for error in (exc, exc.__cause__):
        if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
    text = str(exc)
    return "No space left on device" in text or "Disk quota exceeded" in text


def _make_room(needed: int) -> int:
    """Evict least recently served images until `needed` bytes are free; how many went."""
    evicted = 0
    for artifact in Artifact.objects.order_by("last_served", "pk").iterator():
        if shutil.disk_usage(cache.root()).free >= needed:
            break
        purge(artifact)
        evicted += 1
    return evicted


def _cached(key: str) -> Artifact | None:
    artifact = Artifact.objects.filter(key=key).first()
    if artifact is None:
        return None
    if not artifact.path.is_file():  # removed behind our back: build again
        artifact.delete()
        return None
    now = timezone.now()
    Artifact.objects.filter(pk=artifact.pk).update(hits=F("hits") + 1, last_served=now)
    artifact.hits += 1
    artifact.last_served = now
    return artifact


def _adopt(fmt: Format, key: str, label: str) -> Artifact | None:
    """A finished file the database does not know (another process or instance built it, or
    the database was reset): record it instead of building it again."""
    path = cache.path_for(key, fmt.extension)
    if not path.is_file():
        return None
    digest, size = sha256_path(path)
    artifact, _ = Artifact.objects.update_or_create(
        key=key,
        defaults={
            "format": fmt.name, "extension": fmt.extension, "label": label[:200],
            "size": size, "sha256": digest, "build_seconds": 0.0,
        },
    )  # fmt: skip
    return artifact


def _build(fmt: Format, script: bytes, key: str, tc: Toolchain, label: str) -> Artifact:
    final = cache.path_for(key, fmt.extension)
    final.parent.mkdir(parents=True, exist_ok=True)
    workdir = cache.build_dir(key)
    started = time.perf_counter()
    try:
        output = workdir / f"out.{fmt.extension}"
        scratch = workdir / "work"
        scratch.mkdir()
        try:
            fmt.build(script, output, scratch, tc)
        except OSError as exc:  # disk full, permissions: an operator's problem, said plainly
            raise BuildError(f"could not write the image: {exc.strerror or exc}") from exc
        digest, size = sha256_path(output)
        output.replace(final)  # atomic: readers see no file or the whole file
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    seconds = time.perf_counter() - started
    metrics.IMAGE_BUILD_SECONDS.labels(fmt.name).observe(seconds)
    artifact, _ = Artifact.objects.update_or_create(
        key=key,
        defaults={
            "format": fmt.name, "extension": fmt.extension, "label": label[:200],
            "size": size, "sha256": digest, "build_seconds": seconds,
            "created_at": timezone.now(), "last_served": timezone.now(), "hits": 0,
        },
    )  # fmt: skip
    logger.info("built %s %s in %.3fs (%d bytes)", fmt.name, label or key[:12], seconds, size)
    return artifact


def evict_to(max_bytes: int, keep: str | None = None, dry_run: bool = False) -> list[Artifact]:
    """Remove least-recently-served images until the cache holds at most `max_bytes`."""
    total = Artifact.objects.aggregate(total=Sum("size"))["total"] or 0
    evicted: list[Artifact] = []
    if total <= max_bytes:
        return evicted
    for artifact in Artifact.objects.exclude(key=keep).order_by("last_served", "pk").iterator():
        if total <= max_bytes:
            break
        total -= artifact.size
        evicted.append(artifact)
        if not dry_run:
            purge(artifact)
    return evicted


def purge(artifact: Artifact) -> None:
    """Forget an image: the row first (new requests rebuild), then the file."""
    artifact.delete()
    artifact.delete_file()
