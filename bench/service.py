"""Throw-away zosboot servers on 127.0.0.1 for the benchmarks in this directory.

- `scratch_service`: gunicorn alone, one fake kernel on `prod`.
- `stack`: the service exactly as `make run` starts it (setup/serve.sh: nginx in front of
  gunicorn, or gunicorn alone in Django delivery), the same runner the stack tests use.

Scratch SQLite database, kernel store and image cache in a temporary directory. Loopback only;
the servers are stopped when the block ends.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
sys.path.insert(0, str(REPO))

from provisioning.tests.stack import Stack, free_port, running_stack  # noqa: E402


@dataclass(frozen=True)
class Service:
    url: str
    env: dict[str, str]

    def manage(self, *args: str) -> str:
        """Run a management command against the service's database; its stdout."""
        result = subprocess.run(
            [PYTHON, str(REPO / "manage.py"), *args],
            env=self.env, cwd=REPO, capture_output=True, text=True, check=True,
        )  # fmt: skip
        return result.stdout

    def query(self, code: str) -> str:
        return self.manage("shell", "--no-imports", "-c", code).strip()


def wait_until_up(url: str, timeout: float = 30, method: str = "GET") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            request = urllib.request.Request(url, method=method)  # noqa: S310 (loopback)
            with urllib.request.urlopen(request, timeout=2) as response:  # noqa: S310
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"server did not answer {url} within {timeout}s")


@contextlib.contextmanager
def scratch_service(workers: int, **extra_env: str) -> Iterator[Service]:
    with tempfile.TemporaryDirectory(prefix="zosboot-bench-") as scratch:
        root = Path(scratch)
        port = free_port()
        env = {
            **os.environ,
            "DJANGO_SECRET_KEY": "bench-only-secret-key-not-for-production-use-0123456789",
            "DJANGO_DEBUG": "0",
            "ZOSBOOT_DATA_DIR": str(root / "data"),
            "ZOSBOOT_KERNELS_DIR": str(root / "kernels"),
            "ZOSBOOT_ARTIFACTS_DIR": str(root / "artifacts"),
            "ZOSBOOT_IPXE_DIR": os.environ.get("ZOSBOOT_IPXE_DIR", str(REPO / "data" / "ipxe")),
            "ZOSBOOT_PUBLIC_URL": f"http://127.0.0.1:{port}",
            "DATABASE_URL": f"sqlite:///{root / 'bench.sqlite3'}",
            **extra_env,
        }
        service = Service(f"http://127.0.0.1:{port}", env)
        kernel = root / "zero-os-bench.efi"
        kernel.write_bytes(os.urandom(1 << 20))
        service.manage("migrate", "-v0")
        service.manage("import_kernel", str(kernel), "--network", "prod")
        server = subprocess.Popen(
            [PYTHON, "-m", "gunicorn", "zosboot.wsgi", "--bind", f"127.0.0.1:{port}",
             "--workers", str(workers), "--log-level", "warning"],
            env=env, cwd=REPO,
        )  # fmt: skip
        try:
            wait_until_up(f"{service.url}/ipxe/prod")
            yield service
        finally:
            server.terminate()
            server.wait(timeout=30)


@contextlib.contextmanager
def stack(root: Path, **settings: str) -> Iterator[Stack]:
    """setup/serve.sh in `root` (nginx delivery unless settings say otherwise)."""
    ipxe_dir = Path(os.environ.get("ZOSBOOT_IPXE_DIR", REPO / "data" / "ipxe"))
    with running_stack(root, ipxe_dir, **settings) as service:
        yield service
