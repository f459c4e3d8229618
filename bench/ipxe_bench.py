#!/usr/bin/env python3
"""Script endpoint against the framework's floor, side by side in one run.

    .venv/bin/python bench/ipxe_bench.py [--duration 10] [--connections 32] [--rounds 2]
                                         [--delivery nginx|django]

The service as `make run` starts it (bench/service.py `stack`: nginx in front of gunicorn), with
one extra URL, `/bench-bare`, a bare Django view returning the same bytes as the script (same
server, same middleware). wrk drives `GET /ipxe/prod/1234` (every request writes its boot-history
row: the real hot path) and `/bench-bare` in turns, for a fixed time each. Printed: requests/s,
p50/p99 of each, and the script's share of the bare view's rate. Loopback only, bounded in time.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from service import REPO, stack


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


def wrk(url: str, connections: int, seconds: int) -> dict[str, float]:
    result = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", url],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return parse_wrk(result.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per turn (max 60)")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2, help="turns of each (max 5)")
    parser.add_argument("--workers", type=int, default=(os.cpu_count() or 1) * 2 + 1)
    parser.add_argument("--delivery", choices=("nginx", "django"), default="nginx")
    args = parser.parse_args()
    duration, rounds = max(1, min(args.duration, 60)), max(1, min(args.rounds, 5))
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install wrk (make bench does)")

    with tempfile.TemporaryDirectory(prefix="zosboot-ipxe-bench-") as scratch:
        root = Path(scratch)
        root.chmod(0o755)  # the service's unprivileged user reads the kernel and body here
        body = root / "script.ipxe"
        settings = {
            "DJANGO_SETTINGS_MODULE": "bare_settings",
            "PYTHONPATH": str(REPO / "bench"),
            "ZOSBOOT_BENCH_BODY_FILE": str(body),
            "ZOSBOOT_FILE_DELIVERY": args.delivery,
            "ZOSBOOT_WORKERS": str(args.workers),
        }
        kernel = root / "zero-os-bench.efi"
        kernel.write_bytes(os.urandom(1 << 20))
        kernel.chmod(0o644)
        with stack(root / "stack", **settings) as service:
            service.manage("import_kernel", str(kernel), "--network", "prod")
            status, _, script = service.get("/ipxe/prod/1234")
            assert status == 200, script
            body.write_bytes(script)
            body.chmod(0o644)
            urls = {"script": f"{service.url}/ipxe/prod/1234", "bare": f"{service.url}/bench-bare"}
            assert service.get("/bench-bare")[2] == script
            for url in urls.values():  # warm every worker
                wrk(url, 8, 2)
            turns: dict[str, list[dict[str, float]]] = {"script": [], "bare": []}
            for _ in range(rounds):
                for name, url in urls.items():
                    turns[name].append(wrk(url, args.connections, duration))
            events = service.query(
                "from provisioning.models import BootEvent as E; print(E.objects.count())"
            )

    best = {name: max(results, key=lambda r: r["rate"]) for name, results in turns.items()}
    for name, figures in best.items():
        rates = ", ".join(f"{r['rate']:.0f}" for r in turns[name])
        print(
            f"{name:6} {figures['rate']:8.0f} req/s  p50 {figures['p50']:6.2f} ms  "
            f"p99 {figures['p99']:6.2f} ms  non-2xx {figures['non_2xx']:.0f}  "
            f"(turns: {rates})"
        )
    ratio = best["script"]["rate"] / best["bare"]["rate"]
    worker_class = "sync" if args.delivery == "nginx" else "gthread"
    print(
        f"\n/ipxe/prod/1234 runs at {ratio * 100:.0f} % of a bare Django view returning the same "
        f"{len(script)} bytes (p99 {best['script']['p99']:.1f} ms vs {best['bare']['p99']:.1f} ms);"
        f" {events} boot events recorded. make run stack ({args.delivery} delivery), gunicorn "
        f"{args.workers} {worker_class} workers, wrk {args.connections} connections, {rounds} x "
        f"{duration}s turns each, best turn; {os.cpu_count()} cores, loopback."
    )


if __name__ == "__main__":
    main()
