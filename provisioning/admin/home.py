"""The admin's home: the fleet's state before the list of sections. Each network with what it
boots per architecture, since when and by whom, and its machines (seen today, and in all);
the fleet's boots of today (booted, in progress, stuck, failing); the nodes waiting for
approval; the switches waiting for a second operator; the kernels machines still run that no
network boots any more; and links to the views that answer "who runs what".

A few grouped queries over the small tables (networks, switches, nodes, one row per machine),
whatever the size of the boot history.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.safestring import SafeString

from .. import timeline
from ..models import Arch, LatestBoot, Network, Node, PendingSwitch
from .filters import NotSeenFilter, SeenFilter, start_of_today
from .networks import boots, now_booting

#: How many pending switches and leftover kernels the home lists (their lists have them all).
SHOWN = 20


@dataclass(frozen=True)
class NetworkState:
    network: Network
    #: What its machines boot now, per architecture (a cell of the networks list).
    boots: dict[str, SafeString | str]
    seen_today: int
    machines: int

    def machines_url(self, **more) -> str:
        return _latest_boots(network__id__exact=self.network.pk, **more)


@dataclass(frozen=True)
class Link:
    label: str
    url: str


def _latest_boots(**filters) -> str:
    url = reverse("admin:provisioning_latestboot_changelist")
    return f"{url}?{urlencode(filters)}" if filters else url


def _count_by(rows, field: str) -> dict:
    counted = rows.order_by().values(field).annotate(n=Count("pk"))
    return {row[field]: row["n"] for row in counted}


def networks() -> list[NetworkState]:
    found = list(
        Network.objects.select_related(*Network.POINTERS_JOINED).order_by("-active", "slug")
    )
    now_booting(found)
    today = _count_by(LatestBoot.objects.filter(SeenFilter.since(start_of_today())), "network")
    total = _count_by(LatestBoot.objects.all(), "network")
    return [
        NetworkState(
            network,
            {arch: boots(network, arch) for arch in Arch},
            today.get(network.pk, 0),
            total.get(network.pk, 0),
        )
        for network in found
    ]


def leftover_kernels(states: list[NetworkState]) -> list[dict]:
    """Kernels machines run (their latest boot) that no network boots now, on any
    architecture, directly or through a link; the most machines first."""
    booted = {
        kernel.name
        for state in states
        for arch in Arch
        if (kernel := state.network.kernel_for(arch)) is not None
    }
    rows = (
        LatestBoot.objects.exclude(kernel_name="")
        .exclude(kernel_name__in=booted)
        .order_by()
        .values("kernel_name")
        .annotate(n=Count("pk"))
        .order_by("-n", "kernel_name")[:SHOWN]
    )
    return [{**row, "url": _latest_boots(kernel_name=row["kernel_name"])} for row in rows]


def views() -> list[Link]:
    """The views that answer "who runs what", and those other parts of the service add."""
    links = [
        Link("Who runs what: each machine's latest boot", _latest_boots()),
        Link("Machines seen today", _latest_boots(seen=SeenFilter.TODAY)),
        Link("Boots that stopped on the way (last hour)", _latest_boots(boot="failed")),
        Link(
            "Nodes not seen for 7 days",
            reverse("admin:provisioning_node_changelist")
            + "?"
            + urlencode({NotSeenFilter.parameter_name: 7}),
        ),
    ]
    return links


def boots_today() -> list[dict]:
    """How many machines' latest boot of the last 24 hours is booted, in progress, stuck or
    failing (one grouped query over a row per machine), each linked to Boots today."""
    counts = dict(
        timeline.today()
        .order_by()
        .values_list("state")
        .annotate(n=Count("pk"))
        .values_list("state", "n")
    )
    url = reverse("admin:provisioning_boottoday_changelist")
    return [
        {"state": state, "n": counts.get(state, 0), "url": f"{url}?{urlencode({'state': state})}"}
        for state in (timeline.State.FAILING, timeline.State.STUCK, timeline.State.IN_PROGRESS,
                      timeline.State.BOOTED)
    ]  # fmt: skip


def _may_view(request, model_name: str) -> bool:
    user = request.user
    return user.has_perm(f"provisioning.view_{model_name}") or user.has_perm(
        f"provisioning.change_{model_name}"
    )


def context(request) -> dict:
    """What the home shows the user, as far as the user may see it."""
    if not _may_view(request, "network"):
        return {}
    states = networks()
    fleet = {
        "networks": states,
        "arm64": any(state.network.kernel_for(Arch.ARM64) for state in states),
        "leftovers": leftover_kernels(states) if _may_view(request, "latestboot") else [],
        "views": views() if _may_view(request, "latestboot") else [],
        "boots_today": boots_today() if _may_view(request, "latestboot") else [],
        "seen_today": sum(state.seen_today for state in states),
    }
    if _may_view(request, "node"):
        fleet["waiting_nodes"] = Node.objects.pending().count()
        fleet["waiting_url"] = reverse("admin:provisioning_node_changelist") + "?status=pending"
    if _may_view(request, "pendingswitch"):
        waiting = PendingSwitch.objects.filter(state=PendingSwitch.State.PENDING)
        fleet["switches"] = list(
            waiting.select_related("network", "kernel", "link", "changed_by")[:SHOWN]
        )
        fleet["switch_count"] = waiting.count()
        fleet["switches_url"] = (
            reverse("admin:provisioning_pendingswitch_changelist") + "?state__exact=pending"
        )
    return {"fleet": fleet}
