"""The kernel store and the database agree: every registered kernel has its file, with its
bytes, and every file in the store belongs to a registered kernel.

`check()` answers `manage.py check_store` (every byte read) and `/readyz` (within a budget of
bytes per call, remembering what it verified in `ZOSBOOT_RUN_DIR`, so a probe stays fast and
every file is read again only when it changed on disk). `sweep_incoming()` removes what
uploads left behind (a worker killed mid-upload); `prunable()` says which kernels can go.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from .digests import sha256_path
from .models import BootEvent, Kernel, Network

#: Uploads wait in `.incoming` for seconds; anything older than this was abandoned.
INCOMING_MAX_AGE_SECONDS = 3600
#: Files in the store that are not kernels: the store's own note, hidden files.
NOT_KERNELS = frozenset({"README.md"})
#: How many bytes one /readyz may read to verify files it has not verified yet.
READY_BUDGET_BYTES = 256 * 1024 * 1024


@dataclass
class Report:
    """What is wrong with the store; empty lists when nothing is."""

    missing: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)
    unverified: list[str] = field(default_factory=list)
    checked: int = 0

    @property
    def serves_right(self) -> bool:
        """Every kernel nodes may ask for is there with its bytes (orphans harm nobody)."""
        return not self.missing and not self.mismatched

    def lines(self) -> list[str]:
        said = []
        for name in self.missing:
            said.append(f"{name}: registered, but its file is missing from the store")
        for name in self.mismatched:
            said.append(f"{name}: its file's sha256 is not the one registered (changed on disk)")
        for name in self.orphans:
            said.append(f"{name}: a file in the store that no kernel is registered for")
        return said


def root() -> Path:
    return Path(settings.ZOSBOOT_KERNELS_DIR)


def check(*, budget_bytes: int | None = None) -> Report:
    """Compare the store with the database. `budget_bytes` None: hash every file; else hash at
    most that many bytes of files not verified before (the rest are `unverified`)."""
    report = Report()
    verified = _load_verified()
    registered = {}
    for name, file_name, sha256, size in Kernel.objects.values_list(
        "name", "file", "sha256", "size"
    ):
        registered[file_name] = name
        path = root() / file_name
        try:
            stat = path.stat()
        except FileNotFoundError:
            report.missing.append(name)
            continue
        if stat.st_size != size:
            report.mismatched.append(name)
            continue
        fingerprint = [stat.st_ino, stat.st_size, stat.st_mtime_ns]
        known = verified.get(file_name)
        if budget_bytes is not None and known == [*fingerprint, sha256]:
            report.checked += 1
            continue
        if budget_bytes is not None and size > budget_bytes:
            report.unverified.append(name)
            continue
        found, _ = sha256_path(path)
        report.checked += 1
        if budget_bytes is not None:
            budget_bytes -= size
        if found != sha256:
            report.mismatched.append(name)
            verified.pop(file_name, None)
        else:
            verified[file_name] = [*fingerprint, sha256]
    for entry in _store_files():
        if entry not in registered:
            report.orphans.append(entry)
    _save_verified({key: value for key, value in verified.items() if key in registered})
    return report


def _store_files() -> list[str]:
    try:
        entries = sorted(os.listdir(root()))
    except FileNotFoundError:
        return []
    return [
        entry for entry in entries
        if not entry.startswith(".") and entry not in NOT_KERNELS and (root() / entry).is_file()
    ]  # fmt: skip


def _verified_path() -> Path:
    return Path(settings.ZOSBOOT_RUN_DIR) / "store-verified.json"


def _load_verified() -> dict[str, list]:
    try:
        return json.loads(_verified_path().read_text())
    except (OSError, ValueError):
        return {}


def _save_verified(verified: dict[str, list]) -> None:
    path = _verified_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        staged = path.with_name(f".{path.name}.{os.getpid()}")
        staged.write_text(json.dumps(verified))
        os.replace(staged, path)
    except OSError:
        pass  # only a memory of work done: the next check reads the files again


def sweep_incoming(max_age: float = INCOMING_MAX_AGE_SECONDS) -> list[str]:
    """Remove uploads and copies older than `max_age` seconds from `.incoming` (a worker
    killed mid-upload leaves one); the names removed."""
    directory = root() / ".incoming"
    removed = []
    cutoff = time.time() - max_age
    try:
        entries = list(directory.iterdir())
    except FileNotFoundError:
        return removed
    for path in entries:
        with contextlib.suppress(FileNotFoundError):
            if path.is_file() and path.stat().st_mtime < cutoff:
                path.unlink()
                removed.append(path.name)
    return removed


@dataclass(frozen=True)
class Verdict:
    kernel: Kernel
    reason: str  # empty: it can go

    @property
    def removable(self) -> bool:
        return not self.reason


def prunable(days: int | None = None) -> list[Verdict]:
    """Every kernel nothing points at, with why it stays (booted in the last `days`, default
    ZOSBOOT_BOOT_HISTORY_DAYS; what a network would roll back to) or an empty reason when it
    can go. Kernels in use by a network, link, node or undecided switch are not listed."""
    days = settings.ZOSBOOT_BOOT_HISTORY_DAYS if days is None else days
    since = timezone.now() - timedelta(days=days)
    rollback_targets = {
        target.pk
        for network in Network.objects.all()
        for arch in ("amd64", "arm64")
        if (target := network.rollback_target(arch)) is not None
    }
    verdicts = []
    for kernel in Kernel.objects.unused().order_by("uploaded_at", "name"):
        if kernel.pk in rollback_targets:
            reason = "a network would roll back to it"
        elif BootEvent.objects.filter(kernel_sha256=kernel.sha256, created_at__gte=since).exists():
            reason = f"nodes booted it in the last {days} days"
        else:
            reason = ""
        verdicts.append(Verdict(kernel, reason))
    return verdicts
