"""The service as `make run` starts it (setup/serve.sh: nginx in front of gunicorn, or gunicorn
alone in Django delivery), on 127.0.0.1, in a scratch directory, for the tests that need the
real servers: slow readers, shedding, graceful shutdown, a QEMU boot through nginx.

Plain Python and subprocesses: the servers run with their own database, as in production, so
the tests talk to them over HTTP and read their state with `manage.py`.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SECRET = "stack-test-secret-key-not-for-production-0123456789abcdef"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Stack:
    root: Path
    port: int
    env: dict[str, str]
    process: subprocess.Popen | None = None
    repo: Path = REPO  # the release it runs: this one, or an earlier one unpacked elsewhere
    log_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log_path = self.root / "serve.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def manage(self, *args: str) -> str:
        """A management command against the stack's own database, as its service user."""
        command = [sys.executable, str(self.repo / "manage.py"), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "zosboot", "--", *command]
        result = subprocess.run(
            command, env=self.env, cwd=self.repo, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, f"manage.py {args[0]} failed:\n{result.stderr}"
        return result.stdout

    def query(self, code: str) -> str:
        return self.manage("shell", "--no-imports", "-c", code).strip().splitlines()[-1]

    def get(self, path: str, timeout: float = 30, **headers: str) -> tuple[int, dict, bytes]:
        return self.request("GET", path, timeout=timeout, headers=headers)

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        timeout: float = 30,
    ) -> tuple[int, dict, bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            connection.close()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def start(self, timeout: float = 90) -> None:
        self.process = subprocess.Popen(
            ["bash", str(self.repo / "setup" / "serve.sh")],
            env=self.env,
            cwd=self.repo,
            stdout=self.log_path.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"serve.sh exited early:\n{self.log()[-3000:]}")
            with contextlib.suppress(OSError, http.client.HTTPException):
                self.get("/", timeout=2)  # any answer: both servers are up
                return
            time.sleep(0.2)
        raise AssertionError(f"the stack did not answer within {timeout}s:\n{self.log()[-3000:]}")

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM, as an init system or Ctrl-C would; serve.sh's exit status."""
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
            raise AssertionError(f"serve.sh did not stop on SIGTERM:\n{self.log()[-3000:]}")

    def processes(self) -> list[str]:
        """Command lines of the servers still running from this stack's directory."""
        found = []
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            with contextlib.suppress(OSError):
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                if str(self.root) in cmdline and ("gunicorn" in cmdline or "nginx" in cmdline):
                    found.append(cmdline)
        return found


def stack_env(root: Path, ipxe_dir: Path, **settings: str) -> dict[str, str]:
    """The environment serve.sh runs with in `root`: its own kernel store, database, caches.

    `settings` override it, e.g. a DATABASE_URL and ZOSBOOT_KERNELS_DIR that several stacks
    share; the test run's own DATABASE_URL is never inherited.
    """
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "ZOSBOOT_"))},
        "DJANGO_SECRET_KEY": SECRET,
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "ZOSBOOT_DATA_DIR": str(root / "data"),
        "ZOSBOOT_KERNELS_DIR": str(root / "kernels"),
        "ZOSBOOT_IPXE_DIR": str(ipxe_dir),
        "ZOSBOOT_BIND": f"127.0.0.1:{free_port()}",
        "ZOSBOOT_WORKERS": "2",
        "ZOSBOOT_PREBUILD": "0",
        "ZOSBOOT_NTP_SERVER": "",
        **settings,
    }
    if "DATABASE_URL" not in settings:
        env.pop("DATABASE_URL", None)  # the stack's SQLite file in its data directory
    env.pop("PYTEST_VERSION", None)
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)  # the stack counts into its own directory
    env.pop("PYTEST_CURRENT_TEST", None)
    return env


@contextlib.contextmanager
def running_stack(
    root: Path, ipxe_dir: Path, repo: Path = REPO, **settings: str
) -> Iterator[Stack]:
    """serve.sh of `repo` in `root`, with a kernel store, database and caches of its own
    (`stack_env`)."""
    root.mkdir(parents=True, exist_ok=True)
    env = stack_env(root, ipxe_dir, **settings)
    stack = Stack(root, int(env["ZOSBOOT_BIND"].rsplit(":", 1)[1]), env, repo=repo)
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()


def sparse_kernel(path: Path, size: int = 64 * 1024 * 1024) -> Path:
    """A kernel-sized file that costs no disk (a real header, then a hole)."""
    with path.open("wb") as handle:
        handle.write(b"MZ zosboot test kernel\n")
        handle.truncate(size)
    path.chmod(0o644)
    return path


class SlowReader:
    """A node on a very slow link: asks for a file, reads a little, then stalls."""

    def __init__(self, port: int, path: str) -> None:
        self.sock = socket.socket()
        # A small receive window, so the server cannot push the whole file into buffers.
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)
        self.sock.settimeout(30)
        self.sock.connect(("127.0.0.1", port))
        self.sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        self.head = b""
        while b"\r\n\r\n" not in self.head:
            chunk = self.sock.recv(4096)
            if not chunk:
                break
            self.head += chunk

    @property
    def status(self) -> int:
        return int(self.head.split(b" ", 2)[1]) if self.head.startswith(b"HTTP/") else 0

    def close(self) -> None:
        self.sock.close()


@dataclass
class Edge:
    """An edge as `make edge` starts it (setup/edge.sh: nginx alone) in front of `origin`."""

    root: Path
    port: int
    origin: str
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "ZOSBOOT_EDGE_ORIGIN": self.origin,
            "ZOSBOOT_EDGE_BIND": f"127.0.0.1:{self.port}",
            "ZOSBOOT_EDGE_DIR": str(self.root),
        }

    def get(
        self, path: str, timeout: float = 30, source: str | None = None, **headers: str
    ) -> tuple[int, dict, bytes]:
        connection = http.client.HTTPConnection(
            "127.0.0.1", self.port, timeout=timeout,
            source_address=(source, 0) if source else None,
        )  # fmt: skip
        try:
            connection.request("GET", path, headers=headers)
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            connection.close()

    def warm(self) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["bash", str(REPO / "setup" / "edge.sh"), "--warm"],
            env=self.env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip

    def log(self) -> str:
        path = self.root / "log" / "nginx-error.log"
        return path.read_text(errors="replace") if path.exists() else ""


@contextlib.contextmanager
def running_edge(root: Path, origin: str) -> Iterator[Edge]:
    edge = Edge(root, free_port(), origin)
    edge.process = subprocess.Popen(
        ["bash", str(REPO / "setup" / "edge.sh")],
        env=edge.env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            if edge.process.poll() is not None:
                raise AssertionError(f"setup/edge.sh exited early:\n{edge.log()[-2000:]}")
            with contextlib.suppress(OSError, http.client.HTTPException):
                if edge.get("/healthz", timeout=2)[0] == 200:
                    break
            if time.monotonic() > deadline:
                raise AssertionError(f"the edge did not answer:\n{edge.log()[-2000:]}")
            time.sleep(0.1)
        yield edge
    finally:
        if edge.process.poll() is None:
            os.killpg(edge.process.pid, signal.SIGTERM)
            try:
                edge.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(edge.process.pid, signal.SIGKILL)
                edge.process.wait()
