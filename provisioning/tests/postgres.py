"""A throwaway PostgreSQL server: Debian's binaries, a data directory in a temporary directory,
127.0.0.1 and a free port only, stopped and removed when the block ends (also on a failure or
Ctrl-C). `make test` runs the database tests on it a second time, as production may run them.

    with throwaway_server() as url:   # postgres://zosboot:PASSWORD@127.0.0.1:PORT/zosboot
        ...

    python -m provisioning.tests.postgres -- pytest -m "not boot"   # a command with DATABASE_URL

PostgreSQL refuses to run as root: started by root, the server runs as Debian's `postgres`
system user (made by the `postgresql` package), which then owns the temporary directory.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import environ
import psycopg
from psycopg import sql

from provisioning.tests.stack import free_port

# Where Debian's postgresql-<version> packages put their programs (not on PATH).
DEBIAN_ROOT = Path("/usr/lib/postgresql")
SUPERUSER = "zosboot"
DATABASE = "zosboot"

# A throwaway server's data need not survive a crash: skip the disk flushes that make
# PostgreSQL safe and slow. Sockets: only TCP on loopback, no unix socket in a system directory.
SETTINGS = """
listen_addresses = '127.0.0.1'
port = {port}
unix_socket_directories = ''
fsync = off
synchronous_commit = off
full_page_writes = off
"""


def binaries() -> Path:
    """The bin directory of the newest PostgreSQL that Debian's packages installed."""
    found = [path.parent for path in DEBIAN_ROOT.glob("*/bin/postgres")]
    if not found:
        raise RuntimeError(
            f"no PostgreSQL under {DEBIAN_ROOT}: install Debian's postgresql package "
            "(setup/install-packages.sh test)"
        )
    return max(found, key=lambda bin_dir: [int(n) for n in bin_dir.parent.name.split(".")])


def _as_server_user() -> list[str]:
    """The command prefix that runs a program as the user the server runs as."""
    return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


def _run(command: list[str], cwd: Path, log: Path | None = None) -> None:
    result = subprocess.run(
        _as_server_user() + command, cwd=cwd, capture_output=True, text=True, timeout=120
    )
    if result.returncode != 0:
        # The server's own log says why it did not start; it goes with the directory.
        said = log.read_text(errors="replace") if log and log.exists() else ""
        raise RuntimeError(f"{Path(command[0]).name} failed:\n{result.stdout}{result.stderr}{said}")


def connect(url: str, dbname: str | None = None) -> psycopg.Connection:
    """An autocommit connection to the server of a Django DATABASE_URL (CREATE DATABASE runs
    outside transactions)."""
    config = environ.Env.db_url_config(url)
    return psycopg.connect(
        host=config["HOST"] or None,
        port=config["PORT"] or None,
        user=config["USER"] or None,
        password=config["PASSWORD"] or None,
        dbname=dbname or config["NAME"],
        autocommit=True,
    )


def is_postgres(url: str) -> bool:
    return bool(url) and environ.Env.db_url_config(url)["ENGINE"].endswith("postgresql")


@contextlib.contextmanager
def throwaway_server() -> Iterator[str]:
    """A new PostgreSQL server with an empty database; yields its DATABASE_URL."""
    bin_dir = binaries()
    root = Path(tempfile.mkdtemp(prefix="zosboot-postgres-"))
    data = root / "data"
    password = secrets.token_urlsafe(24)
    try:
        (root / "password").write_text(password)
        if os.geteuid() == 0:
            shutil.chown(root, "postgres", "postgres")
            shutil.chown(root / "password", "postgres", "postgres")
        _run(
            [
                str(bin_dir / "initdb"), "--pgdata", str(data), "--username", SUPERUSER,
                "--pwfile", str(root / "password"), "--auth", "scram-sha-256",
                "--encoding", "UTF8", "--locale", "C", "--no-sync",
            ],
            cwd=root,
        )  # fmt: skip
        port = free_port()
        with (data / "postgresql.conf").open("a") as conf:
            conf.write(SETTINGS.format(port=port))
        log = root / "server.log"
        _run(
            [
                str(bin_dir / "pg_ctl"), "start", "--pgdata", str(data), "--wait",
                "--timeout", "60", "--log", str(log),
            ],
            cwd=root, log=log,
        )  # fmt: skip
        url = f"postgres://{SUPERUSER}:{password}@127.0.0.1:{port}/{DATABASE}"
        with connect(url, dbname="postgres") as connection:
            connection.execute(f"CREATE DATABASE {DATABASE}")
        yield url
    finally:
        if (data / "postmaster.pid").exists():
            # Immediate: nothing of it is kept, so there is nothing to write on the way out.
            stop = [str(bin_dir / "pg_ctl"), "stop", "--pgdata", str(data), "--mode", "immediate"]
            subprocess.run(_as_server_user() + stop, cwd=root, capture_output=True, timeout=60)
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def a_server() -> Iterator[str]:
    """The DATABASE_URL of a PostgreSQL server a test may make databases on: the run's own when
    the suite runs on PostgreSQL, else a throwaway one."""
    url = os.environ.get("DATABASE_URL", "")
    if is_postgres(url):
        yield url
    else:
        with throwaway_server() as server:
            yield server


@contextlib.contextmanager
def scratch_database(url: str, prefix: str = "zosboot_scratch") -> Iterator[str]:
    """A new, empty database on the server of `url`; yields its DATABASE_URL, then drops it."""
    name = f"{prefix}_{secrets.token_hex(4)}"  # test runs may share a server
    with connect(url, dbname="postgres") as connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield urlsplit(url)._replace(path=f"/{name}").geturl()
    finally:
        with connect(url, dbname="postgres") as connection:
            connection.execute(
                sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name))
            )


def main(argv: list[str]) -> int:
    command = argv[1:] if argv[:1] == ["--"] else argv
    if not command:
        print("usage: python -m provisioning.tests.postgres -- COMMAND [ARGS...]", file=sys.stderr)
        return 2
    # SIGTERM (CI cancelling the job) unwinds like Ctrl-C, so the server is stopped and removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    try:
        with throwaway_server() as url:
            print(f"postgres: {command[0]} runs on a throwaway PostgreSQL", file=sys.stderr)
            return subprocess.run(command, env={**os.environ, "DATABASE_URL": url}).returncode
    except KeyboardInterrupt:
        return 128 + signal.SIGINT


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
