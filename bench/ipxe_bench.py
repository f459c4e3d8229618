#!/usr/bin/env python3
"""Boot-storm benchmark of the script endpoint: scripts/s and latency under gunicorn.

Starts gunicorn on 127.0.0.1 with a scratch SQLite database (migrated, one kernel on `prod`),
then drives `GET /ipxe/prod/1234` with wrk for a fixed time. Loopback only, bounded in time.

    .venv/bin/python bench/ipxe_bench.py [--duration 10] [--connections 32] [--workers N]

Every request also writes its boot-history row, so this measures the real hot path.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_up(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (loopback)
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"server did not answer {url} within {timeout}s")


def parse_wrk(output: str) -> dict[str, str]:
    figures = {}
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    figures["scripts_per_s"] = rate.group(1) if rate else "?"
    for pct in ("50", "90", "99"):
        match = re.search(rf"^\s+{pct}(?:\.000)?%\s+(\S+)", output, re.MULTILINE)
        figures[f"p{pct}"] = match.group(1) if match else "?"
    total = re.search(r"(\d+) requests in", output)
    figures["requests"] = total.group(1) if total else "?"
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    figures["non_2xx"] = errors.group(1) if errors else "0"
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds of load (max 60)")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, default=(os.cpu_count() or 1) * 2 + 1)
    parser.add_argument("--path", default="/ipxe/prod/1234")
    args = parser.parse_args()
    duration = max(1, min(args.duration, 60))
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install wrk")

    with tempfile.TemporaryDirectory(prefix="zosboot-bench-") as scratch:
        scratch_dir = Path(scratch)
        env = {
            **os.environ,
            "DJANGO_SECRET_KEY": "bench-only-secret-key-not-for-production-use-0123456789",
            "DJANGO_DEBUG": "0",
            "ZOSBOOT_DATA_DIR": str(scratch_dir / "data"),
            "ZOSBOOT_KERNELS_DIR": str(scratch_dir / "kernels"),
            "DATABASE_URL": f"sqlite:///{scratch_dir / 'bench.sqlite3'}",
        }
        kernel = scratch_dir / "zero-os-bench.efi"
        kernel.write_bytes(os.urandom(1 << 20))
        manage = [PYTHON, str(REPO / "manage.py")]
        subprocess.run([*manage, "migrate", "-v0"], env=env, check=True, cwd=REPO)
        subprocess.run(
            [*manage, "import_kernel", str(kernel), "--network", "prod"],
            env=env,
            check=True,
            cwd=REPO,
            stdout=subprocess.DEVNULL,
        )
        port = free_port()
        server = subprocess.Popen(
            [
                PYTHON,
                "-m",
                "gunicorn",
                "zosboot.wsgi",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                str(args.workers),
                "--log-level",
                "warning",
            ],
            env=env,
            cwd=REPO,
        )
        try:
            url = f"http://127.0.0.1:{port}{args.path}"
            wait_until_up(url)
            # Warm every worker (template compilation, connection set-up) before measuring.
            subprocess.run(
                ["wrk", "-t2", "-c8", "-d2s", url], check=True, stdout=subprocess.DEVNULL
            )
            result = subprocess.run(
                ["wrk", "-t2", f"-c{args.connections}", f"-d{duration}s", "--latency", url],
                check=True,
                capture_output=True,
                text=True,
            )
        finally:
            server.terminate()
            server.wait(timeout=30)
        events = subprocess.run(
            [
                *manage,
                "shell",
                "--no-imports",
                "-c",
                "from provisioning.models import BootEvent; print(BootEvent.objects.count())",
            ],
            env=env,
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()

    figures = parse_wrk(result.stdout)
    print(result.stdout)
    print(
        f"GET {args.path}: {figures['scripts_per_s']} scripts/s, p50 {figures['p50']}, "
        f"p90 {figures['p90']}, p99 {figures['p99']} "
        f"({figures['requests']} requests, {figures['non_2xx']} non-2xx, {events} boot events "
        f"recorded; gunicorn {args.workers} sync workers, wrk {args.connections} connections, "
        f"{duration}s, {os.cpu_count()} cores)"
    )


if __name__ == "__main__":
    main()
