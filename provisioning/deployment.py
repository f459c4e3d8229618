"""What a deployment consists of on disk: the directories its settings name, and what the
service needs of each (setup/serve.sh and the systemd units prepare them; backups read them)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import connections


@dataclass(frozen=True)
class Directory:
    setting: str  # the environment variable that moves it
    path: Path
    writable: bool


def sqlite_file() -> Path | None:
    """The SQLite database file, when the database is one."""
    database = connections["default"].settings_dict
    if database["ENGINE"] != "django.db.backends.sqlite3" or database["NAME"] == ":memory:":
        return None
    return Path(database["NAME"]).resolve()


def edge_dir() -> Path | None:
    """The nginx edge's cache (setup/edge.sh), when one is configured or already there."""
    configured = getattr(settings, "ZOSBOOT_EDGE_DIR", None) or os.environ.get("ZOSBOOT_EDGE_DIR")
    path = Path(configured) if configured else Path(settings.ZOSBOOT_DATA_DIR) / "edge"
    return path.resolve() if configured or path.is_dir() else None


def directories() -> list[Directory]:
    """Every directory the settings name, absolute, in the order they should be made."""
    entries = [
        Directory("ZOSBOOT_DATA_DIR", Path(settings.ZOSBOOT_DATA_DIR), True),
        Directory("ZOSBOOT_KERNELS_DIR", Path(settings.ZOSBOOT_KERNELS_DIR), True),
        Directory("ZOSBOOT_ARTIFACTS_DIR", Path(settings.ZOSBOOT_ARTIFACTS_DIR), True),
        Directory("ZOSBOOT_RUN_DIR", Path(settings.ZOSBOOT_RUN_DIR), True),
        Directory("ZOSBOOT_METRICS_DIR", Path(settings.ZOSBOOT_METRICS_DIR), True),
        Directory("ZOSBOOT_STATIC_ROOT", Path(settings.STATIC_ROOT), True),
        Directory("ZOSBOOT_IPXE_DIR", Path(settings.ZOSBOOT_IPXE_DIR), False),
    ]
    database = sqlite_file()
    if database is not None:
        # SQLite writes its -wal and -shm files beside the database.
        entries.append(Directory("DATABASE_URL", database.parent, True))
    edge = edge_dir()
    if edge is not None:
        entries.append(Directory("ZOSBOOT_EDGE_DIR", edge, True))
    return [Directory(d.setting, d.path.resolve(), d.writable) for d in entries]


def outermost(paths: Iterable[Path]) -> list[Path]:
    """The paths, without duplicates and without any that lies inside another."""
    result: list[Path] = []
    for path in sorted(set(paths), key=lambda p: len(p.parts)):
        if not any(path.is_relative_to(kept) for kept in result):
            result.append(path)
    return result
