"""One archive holds a whole install: the database, the kernel store with a sha256 manifest and
the settings that shape scripts (`manage.py backup`), and goes back into an empty install
(`manage.py restore`), every kernel verified before anything is touched.

The archive is a tar: `manifest.json`, the database (`database.sqlite3`, SQLite's online backup
API; `database.pgdump`, pg_dump's custom format), `kernels/<file>` and `settings.env`; release
signatures live in the database. The secret key goes in only when asked (`secret-key`).
Nodes keep booting meanwhile: SQLite's backup reads in WAL mode beside the writers, pg_dump in
its own snapshot, and kernels never change once registered.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from django.conf import settings
from django.core.management import call_command
from django.db import connections

from . import deployment

FORMAT = 1
# What a node's script or image is made of besides the database, and who may sign releases.
SCRIPT_SETTINGS = (
    "ZOSBOOT_PUBLIC_URL",
    "DJANGO_ALLOWED_HOSTS",
    "ZOSBOOT_NTP_SERVER",
    "ZOSBOOT_DOWNLOAD_IDLE_SECONDS",
    "ZOSBOOT_DISCOVERY_RETRY_SECONDS",
    "ZOSBOOT_REFUSED_RETRY_SECONDS",
    "ZOSBOOT_SIGNED_NETWORKS",
    "ZOSBOOT_SIGNED_LINKS",
    "ZOSBOOT_FOUR_EYES_NETWORKS",
)


class BackupError(Exception):
    """A backup or restore that cannot go on; the message says why."""


@dataclass
class Summary:
    database: str
    kernels: int
    kernel_bytes: int


def _postgres_env() -> tuple[list[str], dict[str, str]]:
    """libpq connection arguments and environment for pg_dump / pg_restore."""
    db = connections["default"].settings_dict
    env = dict(os.environ)
    if db.get("PASSWORD"):
        env["PGPASSWORD"] = str(db["PASSWORD"])
    args = ["--dbname", db["NAME"]]
    for flag, key in (("--host", "HOST"), ("--port", "PORT"), ("--username", "USER")):
        if db.get(key):
            args += [flag, str(db[key])]
    return args, env


def _engine() -> str:
    engine = connections["default"].vendor
    if engine not in ("sqlite", "postgresql"):
        raise BackupError(f"backups know SQLite and PostgreSQL, not {engine}")
    return engine


def _setting_value(name: str) -> str:
    value = getattr(settings, name.removeprefix("DJANGO_") if name.startswith("DJANGO_") else name)
    if isinstance(value, list | tuple):
        return ",".join(str(item) for item in value)
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def script_settings() -> dict[str, str]:
    return {name: _setting_value(name) for name in SCRIPT_SETTINGS}


class _Hashing(io.RawIOBase):
    """A file read through sha256."""

    def __init__(self, handle: BinaryIO) -> None:
        self.handle = handle
        self.digest = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self.handle.read(len(buffer))
        self.digest.update(data)
        buffer[: len(data)] = data
        return len(data)


def _add_bytes(archive: tarfile.TarFile, name: str, data: bytes, mode: int = 0o644) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    info.mtime = int(datetime.now(UTC).timestamp())
    archive.addfile(info, io.BytesIO(data))


def _kernel_rows(database: Path | None) -> list[tuple[str, str, str]]:
    """(name, file, sha256) of every kernel, from the snapshot when there is one."""
    if database is not None:
        with sqlite3.connect(database) as snapshot:
            return snapshot.execute(
                "SELECT name, file, sha256 FROM provisioning_kernel ORDER BY name"
            ).fetchall()
    from .models import Kernel

    return list(Kernel.objects.order_by("name").values_list("name", "file", "sha256"))


def backup(
    destination: Path,
    *,
    with_secret_key: bool = False,
    kernels_only: bool = False,
    say: Callable[[str], None] = lambda text: None,
) -> Summary:
    """Write the archive to `destination` (atomically: a temporary file, then a rename)."""
    engine = _engine()
    destination = destination.resolve()
    destination.parent.mkdir(parents=True, exist_ok=True)
    kernels_dir = Path(settings.ZOSBOOT_KERNELS_DIR)
    with tempfile.TemporaryDirectory(prefix="zosboot-backup-") as scratch:
        scratch_dir = Path(scratch)
        database_file: Path | None = None
        snapshot: Path | None = None
        if not kernels_only:
            if engine == "sqlite":
                database_file = scratch_dir / "database.sqlite3"
                source = sqlite3.connect(deployment.sqlite_file(), timeout=20)
                target = sqlite3.connect(database_file)
                try:
                    # One pass, one read transaction: a consistent copy while writers go on.
                    source.backup(target)
                finally:
                    target.close()
                    source.close()
                snapshot = database_file
            else:
                database_file = scratch_dir / "database.pgdump"
                args, env = _postgres_env()
                result = subprocess.run(
                    ["pg_dump", "--format=custom", "--no-owner", "--file", str(database_file),
                     *args],
                    env=env, capture_output=True, text=True, check=False,
                )  # fmt: skip
                if result.returncode != 0:
                    raise BackupError(f"pg_dump failed: {result.stderr.strip()}")
            say(f"database: {engine}, {database_file.stat().st_size} bytes")
        rows = _kernel_rows(snapshot)
        manifest_kernels = []
        partial = destination.with_name(f".{destination.name}.partial")
        with tarfile.open(partial, "w") as archive:
            if database_file is not None:
                archive.add(database_file, arcname=database_file.name)
            for name, file, expected in rows:
                path = kernels_dir / file
                try:
                    handle = path.open("rb")
                except FileNotFoundError:
                    raise BackupError(
                        f"kernel {name}: {path} is missing (deleted during the backup?)"
                    ) from None
                with handle:
                    info = archive.gettarinfo(fileobj=handle, arcname=f"kernels/{file}")
                    hashing = _Hashing(handle)
                    archive.addfile(info, io.BufferedReader(hashing, 1024 * 1024))
                if expected and hashing.digest.hexdigest() != expected:
                    raise BackupError(
                        f"kernel {name}: {path} does not match its recorded sha256; the store "
                        "is damaged: restore that file from an earlier backup"
                    )
                manifest_kernels.append(
                    {"name": name, "file": file, "sha256": hashing.digest.hexdigest(),
                     "size": info.size}
                )  # fmt: skip
            env_lines = [f"{key}={value}" for key, value in script_settings().items()]
            _add_bytes(archive, "settings.env", ("\n".join(env_lines) + "\n").encode())
            signers = settings.ZOSBOOT_RELEASE_SIGNERS
            if signers and Path(signers).is_file():
                _add_bytes(archive, "release-signers", Path(signers).read_bytes())
            if with_secret_key:
                _add_bytes(archive, "secret-key", settings.SECRET_KEY.encode(), mode=0o600)
            manifest = {
                "format": FORMAT,
                "created": datetime.now(UTC).isoformat(timespec="seconds"),
                "database": None if database_file is None else database_file.name,
                "engine": engine,
                "kernels": manifest_kernels,
                "secret_key": with_secret_key,
            }
            _add_bytes(archive, "manifest.json", json.dumps(manifest, indent=1).encode())
        os.chmod(partial, 0o600)  # what the database holds (token hashes, users) is private
        os.replace(partial, destination)
    return Summary(engine, len(manifest_kernels), sum(k["size"] for k in manifest_kernels))


def is_empty() -> list[str]:
    """What makes this install not empty (nothing: it is), so a restore would overwrite it."""
    from django.contrib.auth import get_user_model

    from .models import Farm, Kernel, Node

    found = []
    for model in (Kernel, Node, Farm, get_user_model()):
        count = model.objects.count()
        if count:
            found.append(f"{count} {model._meta.verbose_name_plural}")
    kernels_dir = Path(settings.ZOSBOOT_KERNELS_DIR)
    if kernels_dir.is_dir():
        files = [p for p in kernels_dir.rglob("*") if p.is_file() and p.name != "README.md"]
        if files:
            found.append(f"{len(files)} files in {kernels_dir}")
    return found


def _member(archive: tarfile.TarFile, name: str) -> tarfile.TarInfo:
    try:
        return archive.getmember(name)
    except KeyError:
        raise BackupError(f"not a zosboot backup: {name} is missing") from None


def restore(
    source: Path, *, force: bool = False, say: Callable[[str], None] = lambda text: None
) -> Summary:
    """Put the archive's database and kernels in place; the kernels are verified first."""
    engine = _engine()
    kernels_dir = Path(settings.ZOSBOOT_KERNELS_DIR)
    with tarfile.open(source, "r") as archive:
        manifest = json.load(archive.extractfile(_member(archive, "manifest.json")))
        if manifest.get("format") != FORMAT:
            raise BackupError(f"unknown backup format {manifest.get('format')!r}")
        if manifest["database"] and manifest["engine"] != engine:
            raise BackupError(
                f"the backup holds a {manifest['engine']} database; this install uses {engine}"
            )
        call_command("migrate", "--noinput", verbosity=0)  # a new install: its tables first
        found = is_empty()
        if found and not force:
            raise BackupError(
                "this install is not empty (" + ", ".join(found) + "); restore into an empty "
                "one, or pass --force to replace its database and kernels"
            )
        kernels_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".restore-", dir=kernels_dir) as staging:
            staged = Path(staging)
            for kernel in manifest["kernels"]:
                file = Path(kernel["file"])
                if file.is_absolute() or ".." in file.parts:
                    raise BackupError(f"kernel {kernel['name']}: unsafe file name {file}")
                member = _member(archive, f"kernels/{file}")
                target = staged / file
                target.parent.mkdir(parents=True, exist_ok=True)
                digest = hashlib.sha256()
                with archive.extractfile(member) as data, target.open("wb") as out:
                    while chunk := data.read(1024 * 1024):
                        digest.update(chunk)
                        out.write(chunk)
                if digest.hexdigest() != kernel["sha256"]:
                    raise BackupError(
                        f"kernel {kernel['name']} does not match the manifest's sha256; the "
                        "archive is damaged: nothing was restored"
                    )
                target.chmod(0o644)
            say(f"{len(manifest['kernels'])} kernels verified against the manifest")
            if manifest["database"]:
                database = staged / manifest["database"]
                with archive.extractfile(_member(archive, manifest["database"])) as data:
                    with database.open("wb") as out:
                        shutil.copyfileobj(data, out)
                _replace_database(engine, database)
                say(f"database restored ({engine})")
            for kernel in manifest["kernels"]:
                target = kernels_dir / kernel["file"]
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(staged / kernel["file"], target)
        if "settings.env" in archive.getnames():
            differences = _setting_differences(archive.extractfile("settings.env").read())
            for line in differences:
                say(f"setting differs from the backup's: {line}")
        if manifest.get("secret_key"):
            _restore_secret_key(archive.extractfile("secret-key").read().decode(), say)
    # An archive of an earlier release: bring its database up to this one.
    call_command("migrate", "--noinput", verbosity=0)
    from .models import ConfigGeneration

    ConfigGeneration.bump()  # running workers drop what they knew of the old database
    return Summary(engine, len(manifest["kernels"]), sum(k["size"] for k in manifest["kernels"]))


def _replace_database(engine: str, database: Path) -> None:
    for connection in connections.all():
        connection.close()
    if engine == "sqlite":
        live = deployment.sqlite_file()
        copy = live.with_name(f".{live.name}.restore")
        shutil.copyfile(database, copy)
        for suffix in ("-wal", "-shm"):
            live.with_name(live.name + suffix).unlink(missing_ok=True)
        os.replace(copy, live)
        return
    args, env = _postgres_env()
    result = subprocess.run(
        ["pg_restore", "--clean", "--if-exists", "--no-owner", "--single-transaction",
         *args, str(database)],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        raise BackupError(f"pg_restore failed: {result.stderr.strip()}")


def _setting_differences(text: bytes) -> list[str]:
    current = script_settings()
    differences = []
    for line in text.decode().splitlines():
        key, _, value = line.partition("=")
        if key in current and current[key] != value:
            differences.append(f"{key}={value} in the backup, {current[key]!r} here")
    return differences


def _restore_secret_key(key: str, say: Callable[[str], None]) -> None:
    key_file = Path(
        os.environ.get("ZOSBOOT_SECRET_KEY_FILE") or Path(settings.ZOSBOOT_DATA_DIR) / "secret-key"
    )
    old = os.umask(0o077)
    try:
        key_file.write_text(key + "\n")
    finally:
        os.umask(old)
    say(f"secret key written to {key_file} (restart the service to use it)")
