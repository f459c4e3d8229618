#!/usr/bin/env python3
"""Boot scripts against the framework's floor, side by side in one run, from a fresh start.

    .venv/bin/python bench/ipxe_bench.py [--duration 8] [--connections 32] [--rounds 3]
                                         [--farms 5000] [--workers 5]

The grid workload: `GET /ipxe/prod/<farm>/console=ttyS0` with the farm drawn at random from
1..--farms (all registered, as on a grid), every request writing its boot history (the real hot
path), wrk with 2 threads and --connections connections, turns of --duration seconds.

1. **gunicorn alone** (sync workers, `bench/bench_wsgi.py`: the service plus the floors on the
   same server). Started fresh, then: the grid's first round (every worker just started, as in
   a storm after a power cut), the floor (`/bench-minimal`: a view returning the same bytes
   behind only SecurityMiddleware and CommonMiddleware), and the grid again (steady state),
   in turns; then the same view behind the service's whole middleware (`/bench-bare`) and
   the script for one farm; then what nodes report during a boot (`/boot-report/<ticket>/failed`
   with tickets of scripts this server served, each report a new row).
2. **the make run stack** (nginx in front of the same workers), started fresh: the grid's first
   round, then steady rounds.

Printed: requests/s and p50/p99 of each turn, and the script's share of the floor's rate. Loopback
only, bounded in time.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from service import REPO, stack

from provisioning.tests.stack import SECRET, free_port

GRID_LUA = """
math.randomseed(%d)
request = function()
  return wrk.format("GET", "/ipxe/prod/" .. math.random(1, %d) .. "/console=ttyS0")
end
"""

# What nodes report during a boot (a failed download, with its card and attempt): tickets of
# scripts the same server served, each report a new one (the database takes each once).
REPORTS_LUA = """
math.randomseed(%d)
local tickets = {%s}
request = function()
  local ticket = tickets[math.random(1, #tickets)]
  return wrk.format("GET", "/boot-report/" .. ticket .. "/failed?mac=52-54-00-" ..
    string.format("%%02x-%%02x-%%02x", math.random(0, 255), math.random(0, 255),
    math.random(0, 255)) .. "&card=" .. math.random(0, 255) .. "&try=" .. math.random(0, 255) ..
    "&err=0x3c092003")
end
"""


def tickets(url: str, count: int, farms: int) -> list[str]:
    """The tickets of `count` boot scripts the server at `url` serves."""
    found = []
    for farm in range(1, count + 1):
        with urllib.request.urlopen(f"{url}/ipxe/prod/{farm % farms + 1}") as answer:  # noqa: S310
            script = answer.read().decode()
        found.append(re.search(r"set zos_report /boot-report/([0-9a-f.]+)", script).group(1))
    return found


def parse_wrk(output: str) -> dict[str, float]:
    def to_ms(text: str) -> float:
        value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    figures = {"rate": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))}
    for pct in ("50", "99"):
        match = re.search(rf"^\s+{pct}(?:\.000)?%\s+(\S+)", output, re.MULTILINE)
        figures[f"p{pct}"] = to_ms(match.group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    figures["non_2xx"] = float(errors.group(1)) if errors else 0.0
    return figures


def wrk(url: str, connections: int, seconds: int, script: Path | None = None) -> dict:
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency"]
    if script is not None:
        command += ["-s", str(script)]
    result = subprocess.run(
        [*command, url], check=True, capture_output=True, text=True, timeout=seconds + 60
    )
    return parse_wrk(result.stdout)


def wait_up(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (loopback)
                if response.status == 200:
                    return
        time.sleep(0.1)
    raise SystemExit(f"{url} did not answer within {timeout}s")


def cpu_ticks(marker: str) -> int:
    """CPU time (clock ticks) used so far by the gunicorn processes whose command line holds
    `marker` (the server's port or directory)."""
    total = 0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            cmdline = (proc / "cmdline").read_bytes()
            if b"gunicorn" in cmdline and marker.encode() in cmdline:
                fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])
    return total


def wait_started(marker: str, quiet: float = 0.6, timeout: float = 60) -> float:
    """Wait until every worker has finished starting (none used CPU for `quiet` seconds);
    how long that took."""
    started = time.monotonic()
    last, calm_since = cpu_ticks(marker), time.monotonic()
    while time.monotonic() - started < timeout:
        time.sleep(0.1)
        now = cpu_ticks(marker)
        if now != last:
            last, calm_since = now, time.monotonic()
        elif time.monotonic() - calm_since >= quiet:
            break
    return time.monotonic() - started


def manage(env: dict, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, str(REPO / "manage.py"), *args],
        env=env, cwd=REPO, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return result.stdout


FARMS_CODE = (
    "from provisioning.models import Farm, ConfigGeneration; "
    "Farm.objects.bulk_create([Farm(farmer_id=i, name=f'Farm {{i}}') for i in range(1, {n} + 1)],"
    " batch_size=1000); ConfigGeneration.bump()"
)


@contextlib.contextmanager
def gunicorn_alone(root: Path, workers: int, body: Path, farms: int):
    """gunicorn with bench_wsgi:application on a scratch SQLite database (history on)."""
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "ZOSBOOT_"))},
        "DJANGO_SECRET_KEY": SECRET,
        "DJANGO_SETTINGS_MODULE": "bare_settings",
        "PYTHONPATH": f"{REPO / 'bench'}:{REPO}",
        "ZOSBOOT_BENCH_BODY_FILE": str(body),
        "ZOSBOOT_DATA_DIR": str(root / "data"),
        "ZOSBOOT_KERNELS_DIR": str(root / "kernels"),
        "ZOSBOOT_IPXE_DIR": os.environ.get("ZOSBOOT_IPXE_DIR", str(REPO / "data" / "ipxe")),
        "ZOSBOOT_NTP_SERVER": "",
        "ZOSBOOT_FILE_DELIVERY": "nginx",
        "ZOSBOOT_REPORTS_PER_ADDRESS": str(10**9),  # every report comes from 127.0.0.1
        "DATABASE_URL": f"sqlite:///{root / 'data' / 'bench.sqlite3'}",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    manage(env, "migrate", "-v0")
    kernel = root / "zero-os-bench.efi"
    kernel.write_bytes(os.urandom(1 << 20))
    manage(env, "import_kernel", str(kernel), "--network", "prod")
    manage(env, "shell", "--no-imports", "-c", FARMS_CODE.format(n=farms))

    @contextlib.contextmanager
    def started(all_workers: bool = True):
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "bench_wsgi:application", "--bind",
             f"127.0.0.1:{port}", "--workers", str(workers), "--worker-class", "sync",
             "--log-level", "warning"],
            env=env, cwd=REPO / "bench", stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            wait_up(f"http://127.0.0.1:{port}/healthz")
            if all_workers:
                wait_started(f"127.0.0.1:{port}")
            yield f"http://127.0.0.1:{port}"
        finally:
            server.terminate()
            server.wait(timeout=30)

    yield started


def line(name: str, figures: dict) -> str:
    return (
        f"{name:44} {figures['rate']:8.0f} req/s  p50 {figures['p50']:6.2f} ms  "
        f"p99 {figures['p99']:6.2f} ms  non-2xx {figures['non_2xx']:.0f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=8, help="seconds per turn (max 60)")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3, help="turns of each (max 5)")
    parser.add_argument("--farms", type=int, default=5000)
    parser.add_argument("--workers", type=int, default=(os.cpu_count() or 1) * 2 + 1)
    parser.add_argument("--skip-stack", action="store_true", help="gunicorn alone only")
    args = parser.parse_args()
    duration, rounds = max(1, min(args.duration, 60)), max(2, min(args.rounds, 5))
    farms = max(1, min(args.farms, 100_000))
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install wrk (make bench does)")

    with tempfile.TemporaryDirectory(prefix="zosboot-ipxe-bench-") as scratch:
        root = Path(scratch)
        root.chmod(0o755)  # the stack's unprivileged user reads the kernel and body here
        grid = root / "grid.lua"
        grid.write_text(GRID_LUA % (42, farms))
        body = root / "script.ipxe"
        results: list[tuple[str, dict]] = []

        with gunicorn_alone(root / "alone", args.workers, body, farms) as start:
            with start() as url:  # the body: the very script a farm gets
                with urllib.request.urlopen(f"{url}/ipxe/prod/1234/console=ttyS0") as answer:  # noqa: S310
                    body.write_bytes(answer.read())
                body.chmod(0o644)
            with start(all_workers=False) as url:  # from the first answer: workers starting
                early = wrk(url, args.connections, duration, grid)
                results.append(("gunicorn: grid, from the first answer", early))
            with start() as url:  # fresh: every worker has just started, nothing more
                grid_turns, floor_turns = [], []
                for turn in range(rounds):
                    grid_turns.append(wrk(url, args.connections, duration, grid))
                    floor_turns.append(wrk(f"{url}/bench-minimal", args.connections, duration))
                    if turn == 0:
                        results.append(("gunicorn: grid, first round after a start", grid_turns[0]))
                bare = wrk(f"{url}/bench-bare", args.connections, duration)
                one = wrk(f"{url}/ipxe/prod/1234/console=ttyS0", args.connections, duration)
                reporting = root / "reports.lua"
                quoted = ", ".join(f'"{t}"' for t in tickets(url, 64, farms))
                reporting.write_text(REPORTS_LUA % (7, quoted))
                reports = wrk(url, args.connections, duration, reporting)
            steady = max(grid_turns[1:], key=lambda r: r["rate"])
            floor = max(floor_turns, key=lambda r: r["rate"])
            results += [
                ("gunicorn: grid, steady (best later round)", steady),
                ("gunicorn: floor (Security+Common, same bytes)", floor),
                ("gunicorn: same view, the service's middleware", bare),
                ("gunicorn: one farm", one),
                ("gunicorn: boot reports (failed downloads)", reports),
            ]

        settings = {"ZOSBOOT_WORKERS": str(args.workers), "ZOSBOOT_PREBUILD": "0"}
        if args.skip_stack:
            settings = None
        kernel = root / "zero-os-stack.efi"
        kernel.write_bytes(os.urandom(1 << 20))
        kernel.chmod(0o644)
        if settings is not None:
            with stack(root / "stack", **settings) as service:
                service.manage("import_kernel", str(kernel), "--network", "prod")
                service.manage("shell", "--no-imports", "-c", FARMS_CODE.format(n=farms))
            with stack(root / "stack", **settings) as service:  # a fresh start, same install
                wait_up(f"{service.url}/healthz")  # nginx answers first; gunicorn behind it
                wait_started(str(root / "stack"))
                turns = [wrk(service.url, args.connections, duration, grid) for _ in range(2)]
            results += [
                ("make run stack: grid, first round after start", turns[0]),
                ("make run stack: grid, second round", turns[1]),
            ]

    for name, figures in results:
        print(line(name, figures))
    first = grid_turns[0]
    print(
        f"\nScripts for farms spread over 1..{farms}, against the floor on the same gunicorn: "
        f"first round after a start {first['rate'] / floor['rate']:.2f} x (p99 "
        f"{first['p99']:.1f} ms), steady {steady['rate'] / floor['rate']:.2f} x (p99 "
        f"{steady['p99']:.1f} ms); the same view behind the service's middleware "
        f"{bare['rate'] / floor['rate']:.2f} x; boot reports "
        f"{reports['rate'] / floor['rate']:.2f} x "
        f"(p99 {reports['p99']:.1f} ms). gunicorn {args.workers} sync workers, SQLite, "
        f"boot history on; wrk 2 threads, {args.connections} connections, {duration} s turns; "
        f"{os.cpu_count()} cores, loopback."
    )


if __name__ == "__main__":
    main()
