"""`make install`: the systemd units (setup/systemd/, written by setup/install-service.sh),
checked offline with systemd-analyze, and run for real: this machine has no running systemd,
so the test runs each unit's exact ExecStartPre, ExecStart and ExecReload lines itself, as the
unit's user with the unit's environment file, stops both and starts them again."""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from provisioning.tests.stack import REPO, Stack, free_port, sparse_kernel

pytestmark = [
    pytest.mark.stack,
    pytest.mark.skipif(os.geteuid() != 0, reason="make install runs as root"),
    pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="needs systemd-analyze"),
]

UNITS = ("zosboot.service", "zosboot-nginx.service")


def unit_lines(path: Path) -> list[tuple[str, str]]:
    """(key, value) of each setting in the unit, in order."""
    pairs = []
    for line in path.read_text().splitlines():
        if line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            pairs.append((key, value))
    return pairs


def setting(path: Path, key: str) -> list[str]:
    return [value for k, value in unit_lines(path) if k == key]


def env_file(path: Path) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return {key: value for key, value in pairs if not key.startswith("#")}


@pytest.fixture(scope="module")
def installed(ipxe_dir):
    # Not under pytest's base directory: a pytest session starting meanwhile makes that 0700
    # again, and the service user would lose its way to the install.
    root = Path(tempfile.mkdtemp(prefix="zosboot-install-"))
    try:
        yield from _install(root, ipxe_dir)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _install(root: Path, ipxe_dir: Path):
    port = free_port()
    settings = root / "zosboot.env"
    settings.write_text(
        f"ZOSBOOT_DATA_DIR={root}/data\nZOSBOOT_KERNELS_DIR={root}/kernels\n"
        f"ZOSBOOT_ARTIFACTS_DIR={root}/cache\nZOSBOOT_IPXE_DIR={ipxe_dir}\n"
        f"ZOSBOOT_BIND=127.0.0.1:{port}\nZOSBOOT_PREBUILD=0\nZOSBOOT_WORKERS=2\n"
        "ZOSBOOT_TRUST_PROXY=1\nZOSBOOT_NTP_SERVER=\n"
    )
    env = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ["HOME"],
        "ZOSBOOT_ENV_FILE": str(settings),
    }
    env["ZOSBOOT_UNIT_DIR"] = str(root / "units")
    result = subprocess.run(
        ["bash", str(REPO / "setup" / "install-service.sh")],
        env=env, cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "the units are written, not started" in result.stderr
    yield root, port, settings


def test_the_units_pass_systemd_analyze_verify(installed):
    root, _, _ = installed
    result = subprocess.run(
        ["systemd-analyze", "verify", *UNITS], cwd=root / "units",
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0 and not result.stdout + result.stderr, result.stderr


def test_the_units_are_hardened_and_write_only_the_directories_the_settings_name(installed):
    root, _, settings = installed
    lister = subprocess.run(
        ["runuser", "-u", "zosboot", "--", str(REPO / ".venv/bin/python"), "manage.py",
         "service_dirs", "--writable"],
        env={"PATH": os.environ["PATH"], **env_file(settings)}, cwd=REPO,
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert lister.returncode == 0, lister.stderr
    writable = set(lister.stdout.split())
    assert writable == {str(root / "data"), str(root / "kernels"), str(root / "cache")}
    for unit in UNITS:
        path = root / "units" / unit
        assert set(" ".join(setting(path, "ReadWritePaths")).split()) == writable
        for key, value in [
            ("ProtectSystem", "strict"), ("NoNewPrivileges", "yes"), ("PrivateTmp", "yes"),
            ("Restart", "on-failure"), ("User", "zosboot"),
            ("EnvironmentFile", str(settings)),
        ]:  # fmt: skip
            assert setting(path, key) == [value], (unit, key)
        assert setting(path, "ExecReload"), unit
        result = subprocess.run(
            ["systemd-analyze", "security", "--offline=true", "--threshold=25", str(path)],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        score = re.search(r"Overall exposure level for \S+: ([\d.]+)", result.stdout)
        assert score and float(score.group(1)) <= 2.0, result.stdout[-500:]


class Unit:
    """One unit's service, started the way systemd would, without its sandbox."""

    def __init__(self, path: Path, settings: Path) -> None:
        self.path = path
        # systemd's default PATH
        self.env = {
            "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin",
            **env_file(settings),
        }
        self.env.update(
            value.split("=", 1) for value in setting(path, "Environment") if "=" in value
        )
        self.process: subprocess.Popen | None = None

    def command(self, line: str) -> list[str]:
        line = line.replace("$MAINPID", str(self.process.pid if self.process else 0))
        line = re.sub(r"\$\{(\w+)\}", lambda m: self.env[m.group(1)], line)
        return shlex.split(line)

    @property
    def as_user(self) -> dict:
        """What User= and Group= do: the process itself runs as them (so $MAINPID is it)."""
        user, group = setting(self.path, "User")[0], setting(self.path, "Group")[0]
        return {"user": user, "group": group, "extra_groups": []}

    def run(self, key: str) -> None:
        for line in setting(self.path, key):
            result = subprocess.run(
                self.command(line), env=self.env, cwd=setting(self.path, "WorkingDirectory")[0],
                capture_output=True, text=True, timeout=120, **self.as_user,
            )  # fmt: skip
            assert result.returncode == 0, f"{self.path.name} {key}={line}\n{result.stderr}"

    def start(self, log: Path) -> None:
        self.run("ExecStartPre")
        (line,) = setting(self.path, "ExecStart")
        self.process = subprocess.Popen(
            self.command(line), env=self.env, cwd=setting(self.path, "WorkingDirectory")[0],
            stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True,
            **self.as_user,
        )  # fmt: skip

    def stop(self) -> None:
        """systemctl stop with KillMode=mixed: SIGTERM to the main process, then the rest."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process = None


def wait_for(stack: Stack, path: str, timeout: float = 60) -> tuple[int, bytes]:
    deadline = time.monotonic() + timeout
    while True:
        try:
            status, _, body = stack.get(path, timeout=5)
            if status == 200:
                return status, body
        except OSError:
            status, body = 0, b""
        assert time.monotonic() < deadline, f"{path} answered {status}: {body[:300]!r}"
        time.sleep(0.3)


def test_the_installed_services_answer_survive_a_restart_of_both_and_reload(installed):
    root, port, settings = installed
    gunicorn = Unit(root / "units" / "zosboot.service", settings)
    nginx = Unit(root / "units" / "zosboot-nginx.service", settings)
    stack = Stack(root, port, {**gunicorn.env, "PATH": os.environ["PATH"]})
    kernel = sparse_kernel(root / "zero-os-installed.efi", size=1024 * 1024)
    stack.manage("import_kernel", str(kernel), "--network", "prod")
    log = root / "units.log"
    try:
        for attempt in ("first start", "after a restart of both"):
            gunicorn.start(log)
            nginx.start(log)
            _, body = wait_for(stack, "/ipxe/prod/1234")
            assert b"zero-os-installed.efi" in body, attempt
            _, kernel_bytes = wait_for(stack, "/kernel/net/prod.efi")
            assert kernel_bytes == kernel.read_bytes(), attempt  # sent by nginx
            wait_for(stack, "/readyz")
            if attempt == "first start":
                nginx.stop()
                gunicorn.stop()
                with pytest.raises(OSError):
                    stack.get("/healthz", timeout=2)
        # systemctl reload of both: nginx renders and re-reads its config, gunicorn replaces
        # its workers gracefully; the service answers throughout.
        nginx.run("ExecReload")
        gunicorn.run("ExecReload")
        for _ in range(20):
            assert wait_for(stack, "/ipxe/prod/1234", timeout=10)[0] == 200
            time.sleep(0.1)
        assert nginx.process.poll() is None and gunicorn.process.poll() is None
    finally:
        nginx.stop()
        gunicorn.stop()
    text = log.read_text(errors="replace")
    assert "Traceback" not in text, text[text.find("Traceback") - 1500 :][:4000]


def test_uninstall_removes_the_units_and_leaves_the_data(tmp_path, installed):
    root, _, settings = installed
    units = tmp_path / "units"
    shutil.copytree(root / "units", units)
    result = subprocess.run(
        ["bash", str(REPO / "setup" / "install-service.sh"), "uninstall"],
        env={"PATH": os.environ["PATH"], "ZOSBOOT_ENV_FILE": str(settings),
             "ZOSBOOT_UNIT_DIR": str(units)},
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert not list(units.iterdir())
    assert (root / "data" / "zosboot.sqlite3").exists() and settings.exists()
