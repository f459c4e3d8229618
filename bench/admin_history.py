#!/usr/bin/env python3
"""The boot-history admin at fleet scale: page times with a million events, against the same
pages with a thousand (the ratio says how much the history's size costs).

    .venv/bin/python bench/admin_history.py [--rows 1000000] [--reference 1000] [--runs 5]

Each size gets its own scratch SQLite database (the default deployment), filled with events
of 5,000 machines over 90 days on 4 networks, and 3,000 farms; the pages are asked through
Django's test client as a logged-in superuser, so the figure is the server's work alone:
the changelist, each of its filters, a MAC search, the last 7 days, and the
latest-boots page ("who runs what", with its failed-on-the-way filter). Median of --runs.
"""

from __future__ import annotations

import argparse
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

PAGES = {
    "list": "/admin/provisioning/bootevent/",
    "kind": "/admin/provisioning/bootevent/?kind__exact=kernel",
    "network": "/admin/provisioning/bootevent/?network__id__exact={network}",
    "kernel": f"/admin/provisioning/bootevent/?kernel_name={KERNELS[3]}",
    "mac search": "/admin/provisioning/bootevent/?q=52-54-00-00-12-34",
    # The age filter's "Past 7 days": a range on the indexed time.
    "past 7 days": "/admin/provisioning/bootevent/?created_at__gte={week_ago}"
    "&created_at__lt={tomorrow}",
    "latest boots": "/admin/provisioning/latestboot/",
    "failed boots": "/admin/provisioning/latestboot/?boot=failed",
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
    from provisioning.models import Farm, Network

    call_command("migrate", verbosity=0)
    call_command("collectstatic", interactive=False, verbosity=0)
    networks = [Network.objects.get_or_create(slug=s, defaults={"name": s})[0].pk
                for s in ("prod", "test", "dev", "qa")]  # fmt: skip
    Farm.objects.bulk_create(Farm(farmer_id=n) for n in range(1, FARMS + 1))
    rng = random.Random(7)  # noqa: S311 (made-up history, not secrets)
    span = timedelta(days=90).total_seconds()
    columns = "created_at, kind, client_ip, network_id, farmer_id, mac, kernel_name, " \
              "kernel_sha256, user_agent, path"  # fmt: skip
    insert = f"INSERT INTO provisioning_bootevent ({columns}) VALUES ({', '.join(['%s'] * 10)})"
    batch, events = [], []
    for index in range(rows):
        machine = rng.randrange(MACHINES)
        at = NOW - timedelta(seconds=span * (rows - index) / rows)
        kind = "kernel" if index % 2 else "script"
        row = dict(
            created_at=at, kind=kind, client_ip=f"10.{machine // 250}.{machine % 250}.1",
            network_id=networks[machine % 4], farmer_id=machine % FARMS + 1,
            mac=f"52:54:00:00:{machine >> 8:02x}:{machine & 0xFF:02x}",
            kernel_name=KERNELS[(machine + index // 50_000) % 20] if kind == "kernel" else "",
        )  # fmt: skip
        batch.append((*row.values(), "", "iPXE/1.21.1", "/ipxe/prod"))
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
    figures = {}
    for name, path in PAGES.items():
        url = path.format(network=networks[1], week_ago=week_ago.date(), tomorrow=tomorrow.date())
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            response = client.get(url)
            times.append(time.perf_counter() - started)
            assert response.status_code == 200, (url, response.status_code)
        figures[name] = statistics.median(times)
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
    print(f"{'page':<14} {args.reference:>10,} rows {args.rows:>12,} rows   ratio")
    for name in PAGES:
        print(f"{name:<14} {small[name] * 1000:>11.1f} ms {big[name] * 1000:>13.1f} ms"
              f" {big[name] / small[name]:>7.1f}x")  # fmt: skip


if __name__ == "__main__":
    main()
