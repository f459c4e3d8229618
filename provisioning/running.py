"""Who runs what: each machine's latest boot, kept from the boot history as it is written.

The history has a row per script and kernel served; asking it "which nodes run kernel X" means
finding every machine's latest download among millions of rows. The writer of the history
(provisioning.history) hands each batch here too, and one row per machine (LatestBoot) keeps
its kernel, since when, and the time of its latest script and kernel download.

A machine is known by its MAC when the request names one: /provision/<mac> scripts, and the
boot script's kernel download (it adds `?mac=` from the card that downloads). A script asked
for as /ipxe/<net>/<farm> names no MAC: it is kept under the client address until a kernel
download with a MAC comes from that address, which then takes it over (its farm and the time
of the script). Machines behind one shared address (NAT) booting at the same time can be
paired with each other's script; the kernel each one downloaded is always its own.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from django.db.models import Count, F, Q, QuerySet
from django.utils import timezone

from .models import BootEvent, Kernel, LatestBoot

# A download that follows a script from the same address within this time belongs to it.
PAIRING_WINDOW = timedelta(minutes=10)
# How long a boot may take between its script and its kernel download (retries over several
# cards included) before it counts as failed on the way.
DOWNLOAD_GRACE = timedelta(minutes=10)
FAILED_LOOKBACK = timedelta(hours=1)

_FIELDS = ["mac", "client_ip", "network", "farmer_id", "kernel_name", "kernel_since",
           "kernel_at", "script_at", "milestone", "milestone_at", "scripts", "failures",
           "error", "download_seconds"]  # fmt: skip
#: What the latest boot of a machine is made of: what the service served, what it reported.
_NOTED = (BootEvent.Kind.SCRIPT, BootEvent.Kind.KERNEL, *BootEvent.REPORTS)
#: What comes with a MAC and so claims the script its address fetched just before.
_CLAIMS = (BootEvent.Kind.KERNEL, *BootEvent.REPORTS)


def nodes_running(kernel_name: str) -> QuerySet[LatestBoot]:
    """The machines whose latest kernel download was this kernel."""
    return LatestBoot.objects.filter(kernel_name=kernel_name)


def failed_on_the_way(now: datetime | None = None) -> QuerySet[LatestBoot]:
    """Machines that fetched a boot script in the last hour and no kernel after it."""
    now = now or timezone.now()
    return LatestBoot.objects.filter(
        script_at__gte=now - FAILED_LOOKBACK, script_at__lte=now - DOWNLOAD_GRACE
    ).filter(Q(kernel_at__isnull=True) | Q(kernel_at__lt=F("script_at")))


def note(events: Iterable[dict], model: type[LatestBoot] = LatestBoot) -> None:
    """Fold a batch of history events (the writer's plain values) into the latest boots.

    `model` is the migration's historical model when the history is replayed.
    """
    events = sorted((e for e in events if e["kind"] in _NOTED), key=lambda e: e["created_at"])
    keys = {key for event in events for key in (event["mac"], event["client_ip"]) if key}
    if not keys:
        return
    rows = {row.key: row for row in model.objects.filter(key__in=keys)}
    merged: set[str] = set()
    for event in events:
        key = event["mac"] or event["client_ip"]
        if not key:
            continue
        row = rows.get(key) or rows.setdefault(key, model(key=key))
        merged.discard(key)
        _apply(row, event)
        address = event["client_ip"]
        if event["kind"] in _CLAIMS and event["mac"] and address in rows:
            if _take_over(row, rows[address], event["created_at"]):
                del rows[address]
                merged.add(address)
    if merged:
        model.objects.filter(key__in=merged).delete()
    for row in rows.values():
        row.pk = None  # one upsert on the key for old and new rows alike
    # The migration that replays the history gives the model as it was then: its fields only.
    known = {field.name for field in model._meta.fields}
    model.objects.bulk_create(
        rows.values(), update_conflicts=True, unique_fields=["key"],
        update_fields=[name for name in _FIELDS if name in known],
    )  # fmt: skip


def _apply(row: LatestBoot, event: dict) -> None:
    at, kind = event["created_at"], event["kind"]
    row.mac = event["mac"] or row.mac
    row.client_ip = event["client_ip"] or row.client_ip
    row.network_id = event["network_id"] or row.network_id
    row.farmer_id = event["farmer_id"] or row.farmer_id
    row.milestone, row.milestone_at = kind, at
    if kind == BootEvent.Kind.SCRIPT:
        row.script_at = at
        row.scripts = getattr(row, "scripts", 0) + 1
        row.failures, row.error, row.download_seconds = 0, "", None
        return
    if kind in (BootEvent.Kind.KERNEL, BootEvent.Kind.ARRIVED) and event["kernel_name"]:
        # A kernel sent by an edge is known here by its arrival: both say what it runs.
        if row.kernel_name != event["kernel_name"]:
            row.kernel_name = event["kernel_name"]
            row.kernel_since = at
        row.kernel_at = at
    if kind == BootEvent.Kind.ARRIVED:
        row.scripts = 0
        row.download_seconds = event.get("seconds")
    elif kind == BootEvent.Kind.FAILED:
        row.failures = getattr(row, "failures", 0) + 1
        row.error = event.get("error", "")
    elif kind == BootEvent.Kind.START_FAILED:
        row.error = event.get("error", "")


def _take_over(row: LatestBoot, by_address: LatestBoot, at: datetime) -> bool:
    """A download with a MAC claims the script its address fetched just before."""
    script_at = by_address.script_at
    if script_at is None or not (at - PAIRING_WINDOW <= script_at <= at):
        return False
    if row.script_at is None or row.script_at < script_at:
        row.script_at = script_at
    row.farmer_id = row.farmer_id or by_address.farmer_id
    row.network_id = row.network_id or by_address.network_id
    return True


def machines_booting(arch: str, networks: Iterable[int] | None = None) -> dict[int, int]:
    """How many machines' latest boot was on each network (by id) with a kernel built for
    `arch`: the machines a switch of that network's `arch` kernel reaches at their next boot."""
    names = Kernel.objects.filter(arch=arch).values("name")
    rows = LatestBoot.objects.filter(kernel_name__in=names, network__isnull=False)
    if networks is not None:
        rows = rows.filter(network__in=list(networks))
    counted = rows.order_by().values("network").annotate(n=Count("pk"))
    return {row["network"]: row["n"] for row in counted}
