#!/usr/bin/env python3
"""The boot-history admin at fleet scale: page times with a million events, against the same
pages with a thousand (the ratio says how much the history's size costs).

    .venv/bin/python bench/admin_history.py [--rows 1000000] [--reference 1000] [--runs 5]

Each size gets its own scratch SQLite database (the default deployment), filled with events
of 5,000 machines (each a registered node) over 90 days on 4 networks, 20 kernels (19 in the
store, one removed long ago) and 3,000 named farms; the pages are asked through Django's test
client as a logged-in superuser, so the figure is the server's work alone: the changelist,
each of its filters, its sorting and counts (as a URL asks for them), each kind of search (a
whole MAC, a switch's dotted MAC, a part of a MAC or an address, a farm's name, a sha256
prefix as the list shows it, of a kernel in the store and of the removed one), the last 7
days and a typed date range, the first bytes of the list exported as CSV, the latest-boots
page ("who runs what", with its failed-on-the-way filter), the nodes list and the admin's
home, Boots today (all, failing, stuck in one farm) and a node's page with its timeline.
Median of --runs. The whole history exported as CSV is timed once, after the pages.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MACHINES = 5_000
FARMS = 3_000
KERNELS = [f"zero-os-v3.{n}.efi" for n in range(20)]
NOW = datetime.now(UTC).replace(microsecond=0)

SHA16 = hashlib.sha256(KERNELS[3].encode()).hexdigest()[:16]
REMOVED16 = hashlib.sha256(KERNELS[-1].encode()).hexdigest()[:16]
HISTORY = "/admin/provisioning/bootevent/"
PAGES = {
    "list": HISTORY,
    "kind": HISTORY + "?kind__exact=kernel",
    "network": HISTORY + "?network__id__exact={network}",
    "kernel": HISTORY + f"?kernel_name={KERNELS[3]}",
    # Sorting: by time (the one sort offered), and by kind as a URL may still ask (ignored).
    "sort oldest": HISTORY + "?o=0",
    "sort by kind": HISTORY + "?o=1",
    # "Show counts": not offered on the history; a URL that asks gets the list without them.
    "show counts": HISTORY + "?_facets=1",
    "mac search": HISTORY + "?q=52-54-00-00-12-34",
    "dotted mac": HISTORY + "?q=5254.0000.1234",
    "part of mac": HISTORY + "?q=00:12:34",
    "part of addr": HISTORY + "?q=10.4.7",
    "farm name": HISTORY + "?q=farm-0042",
    "sha256 prefix": HISTORY + f"?q={SHA16}",
    "removed sha256": HISTORY + f"?q={REMOVED16}",
    # The age filter's "Past 7 days": a range on the indexed time.
    "past 7 days": HISTORY + "?created_at__gte={week_ago}&created_at__lt={tomorrow}",
    "date range": HISTORY + "?since={week_ago}&until={yesterday}",
    "export start": "/admin/provisioning/bootevent/export.csv?kind__exact=kernel",
    "latest boots": "/admin/provisioning/latestboot/",
    "failed boots": "/admin/provisioning/latestboot/?boot=failed",
    "nodes": "/admin/provisioning/node/",
    "node dotted mac": "/admin/provisioning/node/?q=5254.0000.1234",
    "home": "/admin/",
    # Which boots failed today, and why: one row a machine, whatever the history's size.
    "boots today": "/admin/provisioning/boottoday/",
    "boots failing": "/admin/provisioning/boottoday/?state=failing",
    "boots stuck, farm": "/admin/provisioning/boottoday/?state=stuck&farm=42",
    # A machine's timeline: its node's page reads its last 7 days of history.
    "node timeline": "/admin/provisioning/node/{node}/change/",
}


def measure(rows: int, runs: int) -> dict[str, float]:
    """In a child process with its own database: fill it, then time each page (seconds)."""
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client

    from provisioning import running
    from provisioning.models import Farm, Kernel, Network, Node

    call_command("migrate", verbosity=0)
    call_command("collectstatic", interactive=False, verbosity=0)
    networks = [Network.objects.get_or_create(slug=s, defaults={"name": s})[0].pk
                for s in ("prod", "test", "dev", "qa")]  # fmt: skip
    Farm.objects.bulk_create(Farm(farmer_id=n, name=f"farm-{n:04d}") for n in range(1, FARMS + 1))
    Node.objects.bulk_create(
        Node(mac=f"52:54:00:00:{m >> 8:02x}:{m & 0xFF:02x}", farm_id=m % FARMS + 1,
             network_id=networks[m % 4], last_ip=f"10.{m // 250}.{m % 250}.1",
             last_seen=NOW - timedelta(hours=m % 400))
        for m in range(MACHINES)
    )  # fmt: skip
    digests = {name: hashlib.sha256(name.encode()).hexdigest() for name in KERNELS}
    # The store holds every kernel but the last, removed long ago (a search for its sha256
    # prefix reads the history's sha256 index as a range).
    Kernel.objects.bulk_create(
        Kernel(name=name, file=name, sha256=digests[name], size=1) for name in KERNELS[:-1]
    )
    rng = random.Random(7)  # noqa: S311 (made-up history, not secrets)
    span = timedelta(days=90).total_seconds()
    columns = "created_at, kind, client_ip, network_id, farmer_id, mac, kernel_name, " \
              "kernel_sha256, user_agent, path, token, card, attempt, error"  # fmt: skip
    insert = f"INSERT INTO provisioning_bootevent ({columns}) VALUES ({', '.join(['%s'] * 14)})"
    batch, events = [], []
    for index in range(rows):
        machine = rng.randrange(MACHINES)
        at = NOW - timedelta(seconds=span * (rows - index) / rows)
        # A boot: its script, its kernel, then what the node reported (1 in 8 a failure).
        kind = ("script", "kernel", "arrived")[index % 3]
        if kind == "arrived" and index % 8 == 2:
            kind = "failed"
        row = dict(
            created_at=at, kind=kind, client_ip=f"10.{machine // 250}.{machine % 250}.1",
            network_id=networks[machine % 4], farmer_id=machine % FARMS + 1,
            mac=f"52:54:00:00:{machine >> 8:02x}:{machine & 0xFF:02x}",
            kernel_name=KERNELS[(machine + index // 50_000) % 20] if kind != "script" else "",
        )  # fmt: skip
        digest = digests[row["kernel_name"]] if row["kernel_name"] else ""
        report = kind in ("arrived", "failed")
        batch.append((*row.values(), digest, "iPXE/1.21.1", "/ipxe/prod", f"t{index}",
                      0, 1 if report else 0, "0x3c092003" if kind == "failed" else ""))  # fmt: skip
        events.append(row)
        if len(batch) == 20_000:
            with connection.cursor() as cursor:
                cursor.executemany(insert, batch)
            running.note(events)
            batch, events = [], []
    if batch:
        with connection.cursor() as cursor:
            cursor.executemany(insert, batch)
        running.note(events)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")

    admin = get_user_model().objects.create_superuser("bench", "bench@example.org", "x")
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(admin)
    today = NOW.replace(hour=0, minute=0, second=0)
    week_ago, tomorrow = today - timedelta(days=7), today + timedelta(days=1)
    dates = dict(week_ago=week_ago.date(), tomorrow=tomorrow.date(),
                 yesterday=(today - timedelta(days=1)).date())  # fmt: skip
    node = Node.objects.get(mac="52:54:00:00:12:34").pk
    figures = {}
    for name, path in PAGES.items():
        url = path.format(network=networks[1], node=node, **dates)
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            response = client.get(url)
            if response.streaming:  # the first rows of an export
                next(iter(response.streaming_content))
            times.append(time.perf_counter() - started)
            assert response.status_code == 200, (url, response.status_code)
            response.close()
        figures[name] = statistics.median(times)
    started = time.perf_counter()
    response = client.get("/admin/provisioning/bootevent/export.csv")
    lines = sum(chunk.count(b"\n") for chunk in response.streaming_content)
    response.close()
    figures["whole export"] = time.perf_counter() - started
    figures["exported rows"] = lines - 1
    return figures


def child(rows: int, runs: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="zosboot-admin-bench-") as scratch:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "zosboot.settings",
            "DJANGO_SECRET_KEY": "admin-bench-secret-key-not-for-production-0123456789",
            "DATABASE_URL": f"sqlite:///{scratch}/bench.sqlite3",
            "ZOSBOOT_DATA_DIR": scratch,
            "ZOSBOOT_LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(REPO),
        }
        result = subprocess.run(
            [sys.executable, __file__, "--child", str(rows), "--runs", str(runs)],
            env=env, cwd=REPO, capture_output=True, text=True, timeout=3600, check=False,
        )  # fmt: skip
        if result.returncode != 0:
            sys.exit(f"bench child ({rows} rows) failed:\n{result.stderr[-3000:]}")
        return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--reference", type=int, default=1_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(measure(args.child, args.runs)))
        return
    big = child(min(args.rows, 5_000_000), args.runs)
    small = child(args.reference, args.runs)
    print(f"{'page':<16} {args.reference:>10,} rows {args.rows:>12,} rows   ratio")
    for name in PAGES:
        print(f"{name:<16} {small[name] * 1000:>11.1f} ms {big[name] * 1000:>13.1f} ms"
              f" {big[name] / small[name]:>7.1f}x")  # fmt: skip
    print(f"whole history as CSV: {big['exported rows']:,} rows in {big['whole export']:.1f} s")


if __name__ == "__main__":
    main()
