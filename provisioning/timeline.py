"""Every boot tells its story: a node's boots, milestone by milestone, from the boot history
(what the service served and what the node reported), and in one sentence why a machine is
not up.

A boot is what one boot script started: the script served, the kernel download, then what the
node reported (the kernel arrived, a download failed, no network, the kernel would not start),
all tied together by the token the script carried. A machine is known by its MAC; a script
asked for by farm (`/ipxe/<net>/<farm>`) names none, and joins the machine's boot through the
token its download and reports carry back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import Case, CharField, Q, QuerySet, Value, When
from django.utils import timezone
from django.utils.timesince import timesince

from .models import BootEvent, LatestBoot

#: How long a boot may go without a milestone before it counts as stuck.
STUCK_AFTER = timedelta(minutes=15)
#: Failed downloads after which a boot counts as failing (each card tries three times).
FAILING_AFTER = 2


class State:
    """What a machine's latest boot came to."""

    BOOTED = "booted"
    IN_PROGRESS = "in progress"
    STUCK = "stuck"
    FAILING = "failing"
    CHOICES = (BOOTED, IN_PROGRESS, STUCK, FAILING)


@dataclass(frozen=True)
class Milestone:
    kind: str
    at: datetime
    label: str
    detail: str = ""


@dataclass
class Boot:
    """One boot of one machine."""

    token: str
    started: datetime
    network: str = ""
    farmer_id: int | None = None
    kernel: str = ""
    address: str = ""
    milestones: list[Milestone] = field(default_factory=list)

    def _first(self, kind: str) -> Milestone | None:
        return next((m for m in self.milestones if m.kind == kind), None)

    @property
    def failures(self) -> int:
        return sum(m.kind == BootEvent.Kind.FAILED for m in self.milestones)

    @property
    def outcome(self) -> str:
        """booted, could not start, no network, failed, or in progress."""
        kinds = {m.kind for m in self.milestones}
        if BootEvent.Kind.START_FAILED in kinds:
            return "could not start"
        if BootEvent.Kind.ARRIVED in kinds:
            return "booted"
        if BootEvent.Kind.NO_NETWORK in kinds:
            return "no network"
        if BootEvent.Kind.FAILED in kinds:
            return "failed"
        return "in progress"

    @property
    def steps(self) -> list[dict]:
        """Its milestones, each with the seconds since the boot began."""
        return [
            {"at": m.at, "after": (m.at - self.started).total_seconds(), "label": m.label,
             "detail": m.detail}
            for m in self.milestones
        ]  # fmt: skip

    @property
    def seconds_to_arrival(self) -> float | None:
        """From the script served to the kernel arrived."""
        arrived = self._first(BootEvent.Kind.ARRIVED)
        return (arrived.at - self.started).total_seconds() if arrived else None


def _detail(event: BootEvent) -> str:
    if event.kind == BootEvent.Kind.SCRIPT:
        farm = f", farm {event.farmer_id}" if event.farmer_id else ""
        return f"network {event.network.slug if event.network else '-'}{farm}"
    if event.kind == BootEvent.Kind.KERNEL:
        return event.kernel_name
    parts = []
    if event.kind in (BootEvent.Kind.FAILED, BootEvent.Kind.ARRIVED, BootEvent.Kind.START_FAILED):
        parts.append(f"card net{event.card}, attempt {event.attempt}")
    if event.error:
        parts.append(f"iPXE error {event.error} (https://ipxe.org/{event.error[2:]})")
    if event.seconds is not None:
        parts.append(f"downloaded in {event.seconds:.0f} s")
    return "; ".join(parts)


#: How far back a machine's timeline goes.
DAYS = 7


def node_timeline(mac: str, days: int = DAYS) -> list[Boot]:
    """The boots of the machine with this MAC in the last `days`, newest first."""
    since = timezone.now() - timedelta(days=days)
    own = list(BootEvent.objects.filter(mac=mac, created_at__gte=since).select_related("network"))
    tokens = {event.token for event in own if event.token}
    addresses = {event.client_ip for event in own if event.client_ip}
    # Scripts asked for by farm name no MAC: they join through the token they gave out.
    by_farm = (
        BootEvent.objects.filter(
            client_ip__in=addresses, created_at__gte=since, kind=BootEvent.Kind.SCRIPT,
            mac="", token__in=tokens,
        ).select_related("network")
        if tokens else []
    )  # fmt: skip
    events = sorted([*own, *by_farm], key=lambda event: (event.created_at, event.pk))
    boots: list[Boot] = []
    by_token: dict[str, Boot] = {}
    for event in events:
        boot = by_token.get(event.token) if event.token else None
        if boot is None and (event.kind == BootEvent.Kind.SCRIPT or not boots):
            boot = Boot(token=event.token, started=event.created_at)
            boots.append(boot)
            if event.token:
                by_token[event.token] = boot
        boot = boot or boots[-1]
        boot.network = boot.network or (event.network.slug if event.network else "")
        boot.farmer_id = boot.farmer_id or event.farmer_id
        boot.kernel = event.kernel_name or boot.kernel
        boot.address = boot.address or (event.client_ip or "")
        boot.milestones.append(
            Milestone(event.kind, event.created_at, event.get_kind_display(), _detail(event))
        )
    return list(reversed(boots))


# --- the fleet's boots: one row a machine (LatestBoot) ------------------------------------


def with_state(rows: QuerySet[LatestBoot], now: datetime | None = None) -> QuerySet[LatestBoot]:
    """`rows` annotated with `state` (State), computed by the database so it can be filtered
    and counted over thousands of machines."""
    now = now or timezone.now()
    return rows.annotate(
        state=Case(
            When(
                Q(milestone__in=[BootEvent.Kind.START_FAILED, BootEvent.Kind.NO_NETWORK])
                | Q(failures__gte=FAILING_AFTER, milestone=BootEvent.Kind.FAILED),
                then=Value(State.FAILING),
            ),
            When(milestone=BootEvent.Kind.ARRIVED, then=Value(State.BOOTED)),
            When(milestone_at__lt=now - STUCK_AFTER, then=Value(State.STUCK)),
            default=Value(State.IN_PROGRESS),
            output_field=CharField(),
        )
    )


#: "Today", for an operator on any time zone and at any hour: the last day.
TODAY = timedelta(hours=24)


def today(now: datetime | None = None) -> QuerySet[LatestBoot]:
    """The machines whose latest boot moved in the last 24 hours."""
    now = now or timezone.now()
    return with_state(LatestBoot.objects.filter(milestone_at__gte=now - TODAY), now)


def state_of(row: LatestBoot, now: datetime | None = None) -> str:
    now = now or timezone.now()
    if row.milestone in (BootEvent.Kind.START_FAILED, BootEvent.Kind.NO_NETWORK) or (
        row.milestone == BootEvent.Kind.FAILED and row.failures >= FAILING_AFTER
    ):
        return State.FAILING
    if row.milestone == BootEvent.Kind.ARRIVED:
        return State.BOOTED
    if row.milestone_at is not None and row.milestone_at < now - STUCK_AFTER:
        return State.STUCK
    return State.IN_PROGRESS


def _ago(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return "at some point"
    if now - moment < timedelta(minutes=1):
        return "just now"
    return f"{timesince(moment, now)} ago"


def reason(row: LatestBoot, now: datetime | None = None) -> str:
    """Why a machine is where it is, in one plain sentence a farmer can act on."""
    now = now or timezone.now()
    when = _ago(row.milestone_at, now)
    scripts = row.scripts
    asked = (
        f"asked for its boot script {scripts} times" if scripts > 1 else "asked for its boot script"
    )
    kind = row.milestone
    if kind == BootEvent.Kind.ARRIVED:
        took = f" in {row.download_seconds:.0f} s" if row.download_seconds is not None else ""
        return f"Booted {when}: its Zero-OS kernel arrived{took} and was started."
    if kind == BootEvent.Kind.START_FAILED:
        return (
            f"The kernel arrived {when} but could not be started (iPXE error {row.error or '?'}): "
            "check the firmware settings (Secure Boot off) and that the machine is of the "
            "kind the kernel is for."
        )
    if kind == BootEvent.Kind.NO_NETWORK:
        return (
            f"No network card got an address {when}: check the cable, the switch port and "
            "that a DHCP server answers on this network."
        )
    if kind == BootEvent.Kind.FAILED:
        return (
            f"Downloading the kernel failed {row.failures} times (the latest {when}, iPXE error "
            f"{row.error or '?'}): check that this network reaches the boot service (firewall, "
            "proxy) and the machine's network cable and switch port."
        )
    if kind == BootEvent.Kind.KERNEL:
        if state_of(row, now) == State.STUCK:
            return (
                f"Started downloading its kernel {when} and said nothing since: it may have "
                "hung or lost power; check its console."
            )
        return f"Downloading its kernel (started {when})."
    if kind == BootEvent.Kind.SCRIPT:
        if state_of(row, now) == State.STUCK:
            return (
                f"{asked.capitalize()}, the kernel never arrived (the latest {when}): check this "
                "machine's network cable and switch port."
            )
        return f"Booting: its boot script was sent {when}."
    return f"Seen {when}."
