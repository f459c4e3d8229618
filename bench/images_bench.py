#!/usr/bin/env python3
"""Boot-image benchmark: cold build, cached download, and a burst on one new key, per format.

    .venv/bin/python bench/images_bench.py [--cold 10] [--cached 20] [--burst 32]

gunicorn on 127.0.0.1 with a scratch database and image cache (bench/service.py). For each
format:
- cold: --cold distinct scripts (one farm ID each), fetched one after another; the build time
  the server recorded (median) and the request time the client saw (median);
- cached: the same image fetched --cached times; time to the response headers (the server's
  work: lookup, hit count, open) and to the last byte (median);
- burst: --burst simultaneous requests for one new key; how many builds happened (must be 1).
Loopback only, bounded in count.
"""

from __future__ import annotations

import argparse
import http.client
import os
import statistics
import threading
import time
from urllib.parse import urlsplit

from service import scratch_service

FORMATS = ("iso", "usb", "uefimg", "uefi", "krn")


def fetch(base: str, path: str) -> tuple[float, float, dict[str, str], int]:
    """(seconds to headers, seconds to last byte, headers, status) for one GET."""
    parts = urlsplit(base)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    started = time.perf_counter()
    connection.request("GET", path)
    response = connection.getresponse()
    headers_at = time.perf_counter() - started
    while response.read(1 << 20):
        pass
    done_at = time.perf_counter() - started
    connection.close()
    return headers_at, done_at, dict(response.getheaders()), response.status


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cold", type=int, default=10)
    parser.add_argument("--cached", type=int, default=20)
    parser.add_argument("--burst", type=int, default=32)
    parser.add_argument("--workers", type=int, default=(os.cpu_count() or 1) * 2 + 1)
    args = parser.parse_args()
    cold_n, cached_n, burst_n = min(args.cold, 50), min(args.cached, 200), min(args.burst, 64)

    rows = []
    with scratch_service(args.workers) as service:
        for index, fmt in enumerate(FORMATS):
            farm0 = 100000 * (index + 1)
            cold = [fetch(service.url, f"/{fmt}/prod/{farm0 + i}") for i in range(cold_n)]
            assert all(status == 200 for *_, status in cold), f"{fmt}: a cold build failed"
            built = service.query(
                "import statistics; from artifacts.models import Artifact; "
                f"print(statistics.median(Artifact.objects.filter(format='{fmt}', "
                f"label__startswith='prod/{str(farm0)[:-3]}').values_list('build_seconds', "
                "flat=True)))"
            )
            cached = [fetch(service.url, f"/{fmt}/prod/{farm0}") for _ in range(cached_n)]
            assert all(h.get("X-Zosboot-Cache") == "hit" for _, _, h, _ in cached)

            barrier = threading.Barrier(burst_n)
            outcomes: list[str] = []

            def one(
                path: str = f"/{fmt}/prod/{farm0 + 99999}",
                barrier: threading.Barrier = barrier,
                outcomes: list[str] = outcomes,
            ) -> None:
                barrier.wait()
                _, _, headers, status = fetch(service.url, path)
                outcomes.append(f"{status} {headers.get('X-Zosboot-Cache')}")

            threads = [threading.Thread(target=one) for _ in range(burst_n)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            rows.append(
                (
                    fmt,
                    ms(float(built)),
                    ms(statistics.median(done for _, done, _, _ in cold)),
                    ms(statistics.median(head for head, _, _, _ in cached)),
                    ms(statistics.median(done for _, done, _, _ in cached)),
                    f"{outcomes.count('200 miss')} of {len(outcomes)} "
                    f"({outcomes.count('200 hit')} hits, "
                    f"{len(outcomes) - outcomes.count('200 miss') - outcomes.count('200 hit')} "
                    "other)",
                    int(cached[0][2]["Content-Length"]),
                )
            )

    header = ("format", "cold build ms (server, median)", "cold request ms", "cached ms to "
              "headers", "cached ms to last byte", f"builds for {burst_n} concurrent requests",
              "bytes")  # fmt: skip
    print(" | ".join(header))
    print(" | ".join("---" for _ in header))
    for row in rows:
        print(" | ".join(str(cell) for cell in row))
    print(
        f"\n{cold_n} cold scripts and {cached_n} cached fetches per format; gunicorn "
        f"{args.workers} sync workers; {os.cpu_count()} cores; loopback."
    )


if __name__ == "__main__":
    main()
