#!/usr/bin/env python3
"""Sites benchmark: a release crosses each edge's uplink once, and nodes that booted before
keep booting when the origin stops.

    .venv/bin/python bench/sites.py [--nodes 500] [--kernel-mb 64] [--rate-mb 1] [--ramp 10]

The origin is the `make run` stack (setup/serve.sh); two edges (setup/edge.sh, nginx alone)
stand in front of it, each serving half of the nodes. Each simulated node asks its edge for its
script (`/ipxe/prod/<farm>`), reads the kernel's content address from it and downloads the
kernel there at a capped rate (a node's slow link), as iPXE would (503 + Retry-After honoured).
While the storm lasts a probe asks for a script every 50 ms through each edge and at the origin
itself. Two storms:

1. **a release**: cold edges; the origin's nginx access log gives the bytes the origin sent for
   /kernel/sha256/ (one copy per edge expected: at most 1.1 x size x edges), each edge's own
   log how many pulls it made;
2. **after a power cut**: the same nodes boot again (every edge saw their scripts) and the
   origin is stopped halfway through: failed boots and stale answers served.

Printed: origin bytes per edge per release, script p50/p99 through the edges against the
origin's own in the same run, completion, and the second storm's failures and stale answers.
Loopback only; every storm is bounded by --deadline and stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import re
import resource
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from service import stack
from storm import HttpError, _read_body, _request, percentile

from provisioning.tests.stack import running_edge

PROBE_INTERVAL = 0.05
SOURCE_RE = re.compile(rb"set zos_source0 (/kernel/sha256/[0-9a-f]{64})")


@dataclass
class Storm:
    name: str
    completed: int = 0
    failures: list[str] = field(default_factory=list)
    stale: int = 0
    probes: dict[str, list[float]] = field(default_factory=dict)
    first_scripts: list[float] = field(default_factory=list)


async def get(port: int, path: str, rate: float | None = None) -> tuple[int, dict, int]:
    sock, status, headers, rest = await _request(port, path)
    try:
        length = int(headers.get("content-length", 0))
        if "content-length" not in headers and status == 200:
            raise HttpError(f"{path}: no Content-Length")
        got = await _read_body(sock, length, rest, rate)
    finally:
        sock.close()
    return status, headers, got


async def script(port: int, path: str) -> tuple[int, dict, bytes]:
    sock, status, headers, rest = await _request(port, path)
    try:
        length = int(headers.get("content-length", 0))
        loop = asyncio.get_running_loop()
        body = rest
        while len(body) < length:
            chunk = await loop.sock_recv(sock, 65536)
            if not chunk:
                break
            body += chunk
    finally:
        sock.close()
    return status, headers, body


async def node(storm: Storm, edge: int, farm: int, size: int, rate: float, start_at: float,
               deadline: float) -> None:  # fmt: skip
    await asyncio.sleep(max(0.0, start_at - time.monotonic()))
    mac = f"52:54:00:{farm >> 16 & 255:02x}:{farm >> 8 & 255:02x}:{farm & 255:02x}"
    try:
        while time.monotonic() < deadline:
            started = time.monotonic()
            status, headers, body = await script(edge, f"/ipxe/prod/{farm}")
            if status == 503 and "retry-after" in headers:
                await asyncio.sleep(int(headers["retry-after"]))
                continue
            if status != 200:
                raise HttpError(f"script: HTTP {status}")
            storm.first_scripts.append(time.monotonic() - started)
            storm.stale += headers.get("x-zosboot-edge") == "stale"
            address = SOURCE_RE.search(body)
            if address is None:
                raise HttpError("script without a content address")
            break
        while time.monotonic() < deadline:
            status, headers, got = await get(edge, f"{address.group(1).decode()}?mac={mac}", rate)
            if status == 503 and "retry-after" in headers:
                await asyncio.sleep(int(headers["retry-after"]))
                continue
            if status != 200 or got != size:
                raise HttpError(f"kernel: HTTP {status}, {got} of {size} bytes")
            storm.completed += 1
            return
        storm.failures.append(f"node {farm}: not booted by the deadline")
    except (OSError, HttpError, ValueError) as exc:
        storm.failures.append(f"node {farm}: {exc}")


async def probe(storm: Storm, name: str, port: int, stop: asyncio.Event) -> None:
    times = storm.probes.setdefault(name, [])
    farm = 900000
    while not stop.is_set():
        farm += 1
        started = time.monotonic()
        with contextlib.suppress(OSError, HttpError):
            status, _, _ = await script(port, f"/ipxe/prod/{farm}")
            if status == 200:
                times.append(time.monotonic() - started)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), PROBE_INTERVAL)


async def run_storm(storm: Storm, edges: list[int], origin: int | None, args, size: int,
                    halfway=None) -> None:  # fmt: skip
    start = time.monotonic() + 0.5
    deadline = start + args.deadline
    rng = random.Random(7)  # noqa: S311 (the same nodes and starts in both storms)
    tasks = [
        asyncio.create_task(
            node(
                storm,
                edges[index % len(edges)],
                1 + index,
                size,
                args.rate_mb * 1e6,
                start + rng.uniform(0, args.ramp),
                deadline,
            )
        )  # fmt: skip
        for index in range(args.nodes)
    ]
    stop = asyncio.Event()
    probes = [asyncio.create_task(probe(storm, f"edge {i + 1}", port, stop))
              for i, port in enumerate(edges)]  # fmt: skip
    if origin is not None:
        probes.append(asyncio.create_task(probe(storm, "origin", origin, stop)))
    if halfway is not None:
        await asyncio.sleep(args.ramp / 2)
        await asyncio.to_thread(halfway)
    await asyncio.gather(*tasks)
    stop.set()
    await asyncio.gather(*probes)


def origin_bytes(root: Path, timeout: float = 10) -> int:
    """Bytes of /kernel/sha256/ the origin's nginx sent (its access log, written every 2 s)."""
    time.sleep(3)
    log = root / "data" / "log" / "nginx-access.log"
    text = log.read_text() if log.exists() else ""
    return sum(
        int(match.group(1))
        for match in re.finditer(r'"GET /kernel/sha256/\S+ HTTP/1\.1" 200 (\d+)', text)
    )


def edge_pulls(edge_root: Path) -> int:
    log = edge_root / "log" / "edge-access.log"
    text = log.read_text() if log.exists() else ""
    return len(re.findall(r'"GET /kernel/sha256/\S+ HTTP/1\.1" 200 \d+ cache=MISS', text))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=500)
    parser.add_argument("--kernel-mb", type=int, default=64)
    parser.add_argument("--rate-mb", type=float, default=1.0, help="per-node MB/s")
    parser.add_argument("--ramp", type=float, default=10.0, help="seconds over which nodes start")
    parser.add_argument("--deadline", type=float, default=300.0, help="seconds per storm")
    parser.add_argument("--workers", type=int, default=(os.cpu_count() or 1) * 2 + 1)
    args = parser.parse_args()
    args.nodes = max(2, min(args.nodes, 2000))
    args.deadline = max(30.0, min(args.deadline, 600.0))
    if shutil.which("nginx") is None:
        raise SystemExit("nginx is not installed: make bench installs it")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    size = args.kernel_mb * 1024 * 1024

    with tempfile.TemporaryDirectory(prefix="zosboot-sites-") as scratch:
        root = Path(scratch)
        root.chmod(0o755)
        kernel = root / "zero-os-release.efi"
        with kernel.open("wb") as handle:
            for _ in range(args.kernel_mb):
                handle.write(os.urandom(1024 * 1024))
        kernel.chmod(0o644)
        settings = {"ZOSBOOT_WORKERS": str(args.workers), "ZOSBOOT_REAL_IP_FROM": "127.0.0.1"}
        with (
            stack(root / "origin", **settings) as origin,
            running_edge(root / "edge1", origin.url) as edge1,
            running_edge(root / "edge2", origin.url) as edge2,
        ):
            origin.manage("import_kernel", str(kernel), "--network", "prod")
            for farm in range(1, 50):  # warm every worker of the origin
                origin.get(f"/ipxe/prod/{farm}")
            edges = [edge1.port, edge2.port]

            release = Storm("a release, cold edges")
            asyncio.run(run_storm(release, edges, origin.port, args, size))
            sent = origin_bytes(origin.root)
            pulls = [edge_pulls(edge1.root), edge_pulls(edge2.root)]

            power_cut = Storm("after a power cut, origin stopped halfway")
            stopped = threading.Event()

            def stop_origin() -> None:
                origin.stop()
                stopped.set()

            asyncio.run(run_storm(power_cut, edges, None, args, size, halfway=stop_origin))

    print("storm | nodes | completed | failed | stale answers | first script p50 / p99 ms")
    print("--- | --- | --- | --- | --- | ---")
    for storm in (release, power_cut):
        print(
            f"{storm.name} | {args.nodes} | {storm.completed} | {len(storm.failures)} | "
            f"{storm.stale} | {percentile(storm.first_scripts, 50)} / "
            f"{percentile(storm.first_scripts, 99)}"
        )
    print("\nscripts during the release storm (probe every 50 ms): p50 / p99 ms")
    for name, times in release.probes.items():
        print(f"  {name}: {percentile(times, 50)} / {percentile(times, 99)} ({len(times)} probes)")
    edge_p99 = max(
        sorted(times)[int(len(times) * 0.99)] for name, times in release.probes.items()
        if name.startswith("edge") and times
    )  # fmt: skip
    origin_times = sorted(release.probes.get("origin", []))
    origin_p99 = origin_times[int(len(origin_times) * 0.99)] if origin_times else 0
    print(
        f"\norigin sent {sent} bytes of kernel for {len(edges)} edges: "
        f"{sent / len(edges) / size:.2f} x the kernel per edge per release "
        f"(edge pulls: {pulls[0]} and {pulls[1]}); limit 1.1"
    )
    if origin_p99:
        print(f"script p99 through an edge: {edge_p99 / origin_p99:.2f} x the origin's own")
    for storm in (release, power_cut):
        for failure in storm.failures[:5]:
            print(f"  {storm.name}: {failure}")
    print(
        f"\n{args.nodes} nodes over 2 edges, {args.kernel_mb} MB kernel at {args.rate_mb} MB/s "
        f"per node, {args.ramp:.0f} s ramp; origin gunicorn {args.workers} workers; "
        f"{os.cpu_count()} cores; loopback."
    )


if __name__ == "__main__":
    main()
