#!/usr/bin/env python3
"""Boot-storm benchmark: many nodes boot at once, each on a slow link.

    .venv/bin/python bench/storm.py [--nodes 1000] [--rate-mb 1] [--kernel-mb 64]
                                    [--ramp 10] [--django-nodes 40] [--deadline 300]

Each simulated node fetches its script (`/ipxe/prod/<farm>`), then the 64 MB kernel at a capped
rate (1 MB/s: a node behind a slow link), honouring `503 + Retry-After` the way iPXE does (a shed
request that is retried is not a failure). Nodes start spread over `--ramp` seconds. While the
storm lasts, a probe asks for a script every 50 ms: that is what a node booting *during* the
storm sees. Three runs, same nodes, same file, one after the other:

1. **nginx alone** serving the file as a static file: the reference for kernel throughput;
2. **the make run stack** (setup/serve.sh: nginx in front of gunicorn, X-Accel-Redirect);
3. **Django delivery** (gunicorn alone, streams capped, shed with 503), with fewer nodes
   (`--django-nodes`): without a front server a download holds a thread for its whole length.

Printed per run: script p50/p99 during the storm (probes) and at the nodes' own first request,
kernels completed, requests shed, failures, aggregate MB/s; then the stack's throughput as a
share of nginx alone, and for each stack its own /metrics as a Prometheus scrape every 2 s
saw them move (scripts, kernel downloads and bytes, requests shed, downloads in flight).
Loopback only; every run is bounded by `--deadline` and stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import resource
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from service import REPO, free_port, stack, wait_until_up

PROBE_INTERVAL = 0.05
RECV_BUFFER = 128 * 1024


@dataclass
class Run:
    name: str
    nodes: int
    probes: list[float] = field(default_factory=list)
    first_scripts: list[float] = field(default_factory=list)
    completed: int = 0
    shed: int = 0
    failures: list[str] = field(default_factory=list)
    kernel_bytes: int = 0
    kernel_started: float = float("inf")
    kernel_finished: float = 0.0
    unfinished: int = 0

    @property
    def mb_per_s(self) -> float:
        span = self.kernel_finished - self.kernel_started
        return self.kernel_bytes / span / 1e6 if span > 0 else 0.0


class HttpError(Exception):
    pass


async def _request(port: int, path: str) -> tuple[socket.socket, int, dict[str, str], bytes]:
    """Connect, send a GET, read the status line and headers; the rest stays on the socket."""
    loop = asyncio.get_running_loop()
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECV_BUFFER)
    sock.setblocking(False)
    try:
        await loop.sock_connect(sock, ("127.0.0.1", port))
        request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: iPXE/storm\r\n"
        await loop.sock_sendall(sock, (request + "Connection: close\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = await loop.sock_recv(sock, 16384)
            if not chunk:
                raise HttpError(f"connection closed before the headers of {path}")
            head += chunk
    except BaseException:
        sock.close()
        raise
    header_block, rest = head.split(b"\r\n\r\n", 1)
    lines = header_block.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return sock, status, headers, rest


async def _read_body(sock: socket.socket, length: int, rest: bytes, rate: float | None) -> int:
    """Read `length` body bytes, no faster than `rate` bytes/s (a node's link)."""
    loop = asyncio.get_running_loop()
    buffer = bytearray(RECV_BUFFER)
    received = len(rest)
    started = time.monotonic()
    while received < length:
        if rate:
            ahead = received / rate - (time.monotonic() - started)
            if ahead > 0:
                await asyncio.sleep(ahead)
        count = await loop.sock_recv_into(sock, buffer)
        if count == 0:
            break
        received += count
    return received


async def fetch_script(port: int, path: str) -> float:
    started = time.monotonic()
    sock, status, headers, rest = await _request(port, path)
    try:
        await _read_body(sock, int(headers.get("content-length", 0)), rest, None)
    finally:
        sock.close()
    if status != 200:
        raise HttpError(f"script {path}: HTTP {status}")
    return time.monotonic() - started


async def node(run: Run, port: int, farm: int, kernel_path: str, size: int, rate: float,
               scripts: bool, start_at: float, deadline: float) -> None:  # fmt: skip
    await asyncio.sleep(max(0.0, start_at - time.monotonic()))
    try:
        if scripts:
            run.first_scripts.append(await fetch_script(port, f"/ipxe/prod/{farm}"))
        while time.monotonic() < deadline:
            started = time.monotonic()
            sock, status, headers, rest = await _request(port, kernel_path)
            try:
                if status == 503 and "retry-after" in headers:
                    run.shed += 1
                    await asyncio.sleep(int(headers["retry-after"]))
                    continue
                if status != 200:
                    raise HttpError(f"kernel: HTTP {status}")
                run.kernel_started = min(run.kernel_started, started)
                got = await _read_body(sock, int(headers["content-length"]), rest, rate)
            finally:
                sock.close()
            run.kernel_bytes += got
            if got != size:
                raise HttpError(f"kernel: {got} of {size} bytes")
            run.completed += 1
            run.kernel_finished = max(run.kernel_finished, time.monotonic())
            return
        run.unfinished += 1
    except (OSError, HttpError, ValueError) as exc:
        run.failures.append(f"node {farm}: {exc}")


async def probe(run: Run, port: int, stop: asyncio.Event) -> None:
    farm = 500000
    while not stop.is_set():
        farm += 1
        try:
            run.probes.append(await fetch_script(port, f"/ipxe/prod/{farm}"))
        except (OSError, HttpError) as exc:
            run.failures.append(f"probe: {exc}")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), PROBE_INTERVAL)


async def storm(run: Run, port: int, kernel_path: str, size: int, args, scripts: bool) -> None:
    start = time.monotonic() + 0.5
    deadline = start + args.deadline
    tasks = [
        asyncio.create_task(
            node(
                run,
                port,
                1000 + index,
                kernel_path,
                size,
                args.rate_mb * 1e6,
                scripts,
                start + random.uniform(0, args.ramp),  # noqa: S311 (spreading starts)
                deadline,
            )
        )  # fmt: skip
        for index in range(run.nodes)
    ]
    stop = asyncio.Event()
    prober = asyncio.create_task(probe(run, port, stop)) if scripts else None
    await asyncio.gather(*tasks)
    stop.set()
    if prober:
        await prober


def percentile(values: list[float], pct: float) -> str:
    if not values:
        return "-"
    ordered = sorted(values)
    return f"{ordered[min(len(ordered) - 1, int(len(ordered) * pct / 100))] * 1000:.1f}"


@contextlib.contextmanager
def nginx_alone(root: Path, kernel: Path) -> int:
    """A plain nginx serving the kernel as a static file, with the stack's sending settings."""
    port = free_port()
    for sub in ("temp", "log"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    snippet = (REPO / "setup" / "nginx" / "zosboot-file.conf").read_text()
    conf = root / "nginx.conf"
    conf.write_text(
        f"daemon off; worker_processes auto; pid {root}/nginx.pid;\n"
        f"error_log {root}/log/error.log warn; worker_rlimit_nofile 16384;\n"
        "events { worker_connections 4096; }\n"
        f"http {{ access_log {root}/log/access.log combined buffer=64k flush=2s;\n"
        f"client_body_temp_path {root}/temp/b; proxy_temp_path {root}/temp/p;\n"
        f"fastcgi_temp_path {root}/temp/f; uwsgi_temp_path {root}/temp/u;\n"
        f"scgi_temp_path {root}/temp/s;\n"
        f"server {{ listen 127.0.0.1:{port};\n"
        f"location /kernel/ {{ alias {kernel.parent}/;\n{snippet}\n}} }} }}\n"
    )
    process = subprocess.Popen(["nginx", "-e", f"{root}/log/error.log", "-c", str(conf)])
    try:
        wait_until_up(f"http://127.0.0.1:{port}/kernel/{kernel.name}", method="HEAD")
        yield port
    finally:
        process.terminate()
        process.wait(timeout=30)


WATCHED = ("zosboot_scripts_total", "zosboot_kernel_downloads_total",
           "zosboot_kernel_bytes_total", "zosboot_requests_shed_total",
           "zosboot_downloads_in_flight")  # fmt: skip


class Scrapes(threading.Thread):
    """Scrapes the stack's /metrics every `every` seconds while the storm runs, as Prometheus
    would: the figures must move with the storm (summed over every label)."""

    def __init__(self, service, every: float = 2.0) -> None:
        super().__init__(daemon=True)
        self.service, self.every = service, every
        self.rows: list[tuple[float, dict[str, float]]] = []
        self.stop = threading.Event()
        self.started = time.monotonic()

    def run(self) -> None:
        while not self.stop.is_set():
            status, _, body = self.service.get("/metrics", timeout=10)
            if status == 200:
                self.rows.append((time.monotonic() - self.started, parse_metrics(body.decode())))
            self.stop.wait(self.every)

    def table(self, lines: int = 8) -> str:
        step = max(1, len(self.rows) // lines)
        picked = sorted({*range(0, len(self.rows), step), len(self.rows) - 1} - {-1})
        out = ["  t (s) | " + " | ".join(name.removeprefix("zosboot_") for name in WATCHED)]
        for at, values in (self.rows[index] for index in picked):
            out.append(f"  {at:5.0f} | " + " | ".join(f"{values.get(n, 0):.0f}" for n in WATCHED))
        return "\n".join(out)


def parse_metrics(text: str) -> dict[str, float]:
    """Prometheus text format, each watched family summed over its labels."""
    totals: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name = line.split("{", 1)[0].split(" ", 1)[0]
        if name in WATCHED:
            totals[name] = totals.get(name, 0.0) + float(line.rsplit(" ", 1)[1])
    return totals


def report(run: Run) -> str:
    return (
        f"{run.name} | {run.nodes} | {percentile(run.probes, 50)} | {percentile(run.probes, 99)}"
        f" ({len(run.probes)}) | {percentile(run.first_scripts, 50)} | "
        f"{percentile(run.first_scripts, 99)} | {run.completed} | {run.unfinished} | {run.shed}"
        f" | {len(run.failures)} | {run.mb_per_s:.1f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--django-nodes", type=int, default=40)
    parser.add_argument("--rate-mb", type=float, default=1.0, help="per-node MB/s")
    parser.add_argument("--kernel-mb", type=int, default=64)
    parser.add_argument("--ramp", type=float, default=10.0, help="seconds over which nodes start")
    parser.add_argument("--deadline", type=float, default=300.0, help="seconds per run (max 600)")
    parser.add_argument("--workers", type=int, default=(os.cpu_count() or 1) * 2 + 1)
    parser.add_argument("--skip-django", action="store_true")
    args = parser.parse_args()
    args.nodes = max(1, min(args.nodes, 2000))
    args.django_nodes = max(1, min(args.django_nodes, 500))
    args.deadline = max(10.0, min(args.deadline, 600.0))
    if shutil.which("nginx") is None:
        raise SystemExit("nginx is not installed: make bench installs it")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    size = args.kernel_mb * 1024 * 1024

    runs: list[Run] = []
    metrics: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="zosboot-storm-") as scratch:
        root = Path(scratch)
        root.chmod(0o755)  # the servers' unprivileged workers read the kernel from here
        kernel = root / "files" / "zero-os-storm.efi"
        kernel.parent.mkdir(mode=0o755)
        with kernel.open("wb") as handle:
            for _ in range(args.kernel_mb):
                handle.write(os.urandom(1024 * 1024))
        kernel.chmod(0o644)

        run = Run("nginx alone (static file)", args.nodes)
        with nginx_alone(root / "nginx-alone", kernel) as port:
            asyncio.run(storm(run, port, f"/kernel/{kernel.name}", size, args, scripts=False))
        runs.append(run)

        for delivery, nodes in (("nginx", args.nodes), ("django", args.django_nodes)):
            if delivery == "django" and args.skip_django:
                continue
            name = "make run stack (nginx + gunicorn)" if delivery == "nginx" else (
                "Django delivery (gunicorn alone)"
            )  # fmt: skip
            settings = {"ZOSBOOT_FILE_DELIVERY": delivery, "ZOSBOOT_WORKERS": str(args.workers)}
            with stack(root / f"stack-{delivery}", **settings) as service:
                service.manage("import_kernel", str(kernel), "--network", "prod")
                for farm in range(1, 50):  # warm every worker
                    service.get(f"/ipxe/prod/{farm}")
                run = Run(name, nodes)
                scrapes = Scrapes(service)
                scrapes.start()
                asyncio.run(storm(run, service.port, "/kernel/net/prod.efi", size, args, True))
                scrapes.stop.set()
                scrapes.join()
                metrics[name] = scrapes.table()
                events = service.query(
                    "from provisioning.models import BootEvent as E; print(E.objects.count())"
                )
            runs.append(run)
            run.name += f", {events} boot events"

    header = ("run", "nodes", "script p50 ms during storm", "p99 ms (probes)",
              "first script p50 ms", "p99 ms", "kernels completed", "unfinished",
              "requests shed", "failures", "kernel MB/s")  # fmt: skip
    print(" | ".join(header))
    print(" | ".join("---" for _ in header))
    for run in runs:
        print(report(run))
    for run in runs:
        for failure in run.failures[:5]:
            print(f"  {run.name}: {failure}")
    for name, table in metrics.items():
        print(f"\n{name}: its /metrics, scraped every 2 s during the storm\n{table}")
    reference, stack_run = runs[0].mb_per_s, runs[1].mb_per_s
    print(
        f"\nmake run stack: kernel throughput {stack_run:.1f} MB/s = "
        f"{stack_run / reference * 100 if reference else 0:.0f} % of nginx alone "
        f"({reference:.1f} MB/s); {args.nodes} nodes at {args.rate_mb} MB/s, "
        f"{args.kernel_mb} MB kernel, {args.ramp:.0f} s ramp; gunicorn {args.workers} workers; "
        f"{os.cpu_count()} cores; loopback."
    )


if __name__ == "__main__":
    main()
