#!/usr/bin/env python3
"""Boot-storm benchmark of the script endpoint: scripts/s and latency under gunicorn.

    .venv/bin/python bench/ipxe_bench.py [--duration 10] [--connections 32] [--workers N]

gunicorn on 127.0.0.1 with a scratch SQLite database (bench/service.py), `GET /ipxe/prod/1234`
driven by wrk for a fixed time. Every request also writes its boot-history row, so this is the
real hot path. Loopback only, bounded in time.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess

from service import scratch_service


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
        raise SystemExit("wrk is not installed: apt-get install wrk (make bench does)")

    with scratch_service(args.workers) as service:
        url = service.url + args.path
        # Warm every worker (template compilation, connections) before measuring.
        subprocess.run(["wrk", "-t2", "-c8", "-d2s", url], check=True, stdout=subprocess.DEVNULL)
        result = subprocess.run(
            ["wrk", "-t2", f"-c{args.connections}", f"-d{duration}s", "--latency", url],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        events = service.query(
            "from provisioning.models import BootEvent; print(BootEvent.objects.count())"
        )

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
