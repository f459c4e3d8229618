"""The README's rolling upgrade, for real: two instances of the previous release (the code just
before the newest migration, unpacked from git) on one PostgreSQL behind a balancer; the new
release's migrations applied while they serve; then each instance replaced by the new release,
one at a time. No boot may fail on the way."""

from __future__ import annotations

import contextlib
import http.client
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from provisioning.tests.postgres import a_server, scratch_database
from provisioning.tests.stack import REPO, Stack, running_stack, sparse_kernel

pytestmark = pytest.mark.stack


def git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=REPO, capture_output=True, text=True, check=True, timeout=60
    ).stdout.strip()


def previous_release(target: Path) -> Path:
    """This repository as it was just before its newest migration was added."""
    try:
        newest = sorted(path for path in (REPO / "provisioning" / "migrations").glob("0*.py"))[
            -1
        ].relative_to(REPO)
        # Along the main line only: a merged branch's own commits (one renumbering its
        # migration, say) are no release anyone ran.
        added = git(
            "log", "-1", "--first-parent", "--diff-filter=A", "--format=%H", "--", str(newest)
        )
        commit = git("rev-parse", f"{added}^1")
    except (subprocess.CalledProcessError, FileNotFoundError, IndexError) as exc:
        pytest.skip(f"no git history to take the previous release from: {exc}")
    target.mkdir(parents=True)
    archive = subprocess.run(["git", "archive", commit], cwd=REPO, capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)
    (target / ".venv").symlink_to(REPO / ".venv")  # the same packages
    subprocess.run(["chmod", "-R", "a+rX", str(target)], check=True)
    return target


@pytest.fixture
def database():
    with a_server() as server, scratch_database(server, "zosboot_rolling") as database:
        yield database


class Balancer(threading.Thread):
    """What the load balancer in front does: ask one instance, the other when it does not
    answer; a boot fails only when neither gives a script."""

    def __init__(self, stacks: list[Stack]) -> None:
        super().__init__(daemon=True)
        self.stacks = stacks
        self.stop = threading.Event()
        self.failed: list[str] = []
        self.served = 0

    def run(self) -> None:
        turn = 0
        while not self.stop.is_set():
            turn += 1
            for stack in self.stacks[turn % 2 :] + self.stacks[: turn % 2]:
                with contextlib.suppress(OSError, http.client.HTTPException):
                    status, _, body = stack.get("/ipxe/prod/1234", timeout=5)
                    if status == 200 and b"zero-os-rolling.efi" in body:
                        self.served += 1
                        break
            else:
                self.failed.append(time.strftime("%H:%M:%S"))
            time.sleep(0.05)


def healthy(stack: Stack, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(OSError, http.client.HTTPException):
            if stack.get("/readyz", timeout=5)[0] == 200:
                return
        assert time.monotonic() < deadline, stack.log()[-3000:]
        time.sleep(0.2)


def test_a_rolling_upgrade_of_two_instances_fails_no_boot(tmp_path, ipxe_dir, database):
    old = previous_release(tmp_path / "previous-release")
    shared = {
        "DATABASE_URL": database,
        "ZOSBOOT_KERNELS_DIR": str(tmp_path / "kernels"),
        "ZOSBOOT_PUBLIC_URL": "http://bootstrap.example.org",
    }
    new = {**shared, "ZOSBOOT_MIGRATE": "0"}  # the README's setting for several instances
    with contextlib.ExitStack() as stacks:
        a = stacks.enter_context(running_stack(tmp_path / "a-old", ipxe_dir, repo=old, **shared))
        b = stacks.enter_context(running_stack(tmp_path / "b-old", ipxe_dir, repo=old, **shared))
        kernel = sparse_kernel(tmp_path / "zero-os-rolling.efi", size=1024 * 1024)
        a.manage("import_kernel", str(kernel), "--network", "prod")
        healthy(a)
        healthy(b)
        balancer = Balancer([a, b])
        balancer.start()
        try:
            # 1. The new release's migrations, while the previous release serves.
            pending = a.env  # the new code, the shared database
            assert "lacks" in subprocess.run(
                migrator_command("migrate", "--check"), env=pending, cwd=REPO,
                capture_output=True, text=True, timeout=120,
            ).stderr  # fmt: skip
            migrated = subprocess.run(
                migrator_command("migrate", "--noinput"), env=pending, cwd=REPO,
                capture_output=True, text=True, timeout=300,
            )  # fmt: skip
            assert migrated.returncode == 0, migrated.stderr
            served_before = balancer.served
            time.sleep(1)
            assert balancer.served > served_before, "the previous release stopped on the new schema"
            # 2. Each instance in turn: stop the old one, start the new release in its place.
            for index, name in enumerate(("a", "b")):
                balancer.stacks[index].stop()
                fresh = stacks.enter_context(
                    running_stack(tmp_path / f"{name}-new", ipxe_dir, **new)
                )
                healthy(fresh)
                balancer.stacks[index] = fresh
                time.sleep(1)
        finally:
            balancer.stop.set()
            balancer.join(timeout=30)
        assert balancer.failed == [], f"{len(balancer.failed)} boots failed: {balancer.failed}"
        assert balancer.served > 50
        for stack in balancer.stacks:
            assert stack.repo == REPO
            assert stack.get("/kernel/net/prod.efi")[2] == kernel.read_bytes()


def migrator_command(*args: str) -> list[str]:
    command = [sys.executable, str(REPO / "manage.py"), *args]
    if os.geteuid() == 0:
        command = ["runuser", "-u", "zosboot", "--", *command]
    return command
