"""What a node tells about its boot: the kernel arrived (and how long it took), a download
failed (which card, which attempt, iPXE's error), no card had a network, the kernel could not
be started.

The boot script sends each as one tiny GET to the server that served it,
`/boot-report/<token>/<milestone>?mac=...&card=...&try=...&err=...&t0=...&t1=...`, with a
short timeout and its result ignored, so a report never delays or breaks a boot. The token is
made when the script is served: it names the network, farm, node and kernels of that script,
when it was served, and is signed with the service's key. So a report can only be about a
script the service served (a forged token is refused and counted apart), a report repeated
is taken once (counted apart), and each client address may report only so much per window
(`ZOSBOOT_REPORTS_PER_ADDRESS`): a flood cannot fill the database.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict

from django.conf import settings
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse

from . import history, lookups, metrics
from .clients import client_ip
from .errors import BootError
from .http import script_response
from .models import BootEvent, Node
from .tickets import Ticket, read
from .validators import normalise_mac

#: The milestones, as they appear in the report URL.
MILESTONES = {
    "arrived": BootEvent.Kind.ARRIVED,
    "failed": BootEvent.Kind.FAILED,
    "no-network": BootEvent.Kind.NO_NETWORK,
    "start-failed": BootEvent.Kind.START_FAILED,
}


class _Window:
    """How many reports each client address made in the current window, in this worker
    (the addresses least recently seen are forgotten first: the table stays small)."""

    def __init__(self, size: int = 10_000) -> None:
        self._counts: OrderedDict[str, tuple[float, int]] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def allow(self, address: str, limit: int, seconds: float) -> bool:
        now = time.monotonic()
        with self._lock:
            started, count = self._counts.pop(address, (now, 0))
            if now - started >= seconds:
                started, count = now, 0
            self._counts[address] = (started, count + 1)
            while len(self._counts) > self._size:
                self._counts.popitem(last=False)
        return count < limit


class _Seen:
    """The reports this worker took lately, to count a replay apart at once (the database's
    constraint keeps one of each across workers and instances)."""

    def __init__(self, size: int = 50_000) -> None:
        self._keys: OrderedDict[tuple, None] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def first(self, key: tuple) -> bool:
        with self._lock:
            if key in self._keys:
                return False
            self._keys[key] = None
            if len(self._keys) > self._size:
                self._keys.popitem(last=False)
        return True


window = _Window()
seen = _Seen()


def _number(raw: str | None, limit: int) -> int:
    """A small count from the URL (card, attempt), 0 when absent or not one."""
    if raw is None or not raw.isdigit() or len(raw) > 6:
        return 0
    return min(int(raw), limit)


def _error(raw: str | None) -> str:
    """iPXE's error number (`${errno}`: decimal or 0x hex), as 0x%08x; empty if none."""
    try:
        value = _integer(raw)
    except ValueError:
        return ""
    return f"0x{value:08x}" if 0 < value < 2**32 else ""


def _seconds(started: str | None, ended: str | None) -> float | None:
    """How long the download took, by the node's own clock (`${unixtime}` before and after,
    in decimal or 0x hex as the iPXE build writes it)."""
    try:
        took = _integer(ended) - _integer(started)
    except ValueError:
        return None
    return float(took) if 0 <= took <= 24 * 3600 else None


def _integer(raw: str | None) -> int:
    if not raw or len(raw) > 20:
        raise ValueError(raw)
    return int(raw, 16) if raw.lower().startswith("0x") else int(raw, 10)


def receive(request: HttpRequest, token: str, milestone: str) -> HttpResponse:
    """`/boot-report/<token>/<milestone>`: record what the node says, once; the answer is a
    short line nobody waits for."""
    kind = MILESTONES.get(milestone)
    if kind is None:
        raise BootError(404, f"unknown milestone: {milestone[:40]}")
    try:
        ticket = read(token)
    except BootError:
        metrics.REPORTS.labels(kind, "refused").inc()
        raise
    address = client_ip(request) or "-"
    if not window.allow(address, settings.ZOSBOOT_REPORTS_PER_ADDRESS,
                        settings.ZOSBOOT_REPORTS_WINDOW_SECONDS):  # fmt: skip
        metrics.REPORTS.labels(kind, "limited").inc()
        raise BootError(429, "too many reports from this address", retry_after=60)
    card = _number(request.GET.get("card"), 255)
    attempt = _number(request.GET.get("try"), 255)
    if not seen.first((token, kind, card, attempt)):
        metrics.REPORTS.labels(kind, "replayed").inc()
        return script_response("ok, already reported\n")
    event = _event(request, ticket, token, kind, card, attempt)
    history.record(request, event)
    metrics.REPORTS.labels(kind, "taken").inc()
    _count_boot(event, ticket)
    return script_response("ok\n")


def _event(request, ticket: Ticket, token: str, kind: str, card: int, attempt: int):
    catalog = lookups.current()
    network = next((n for n in catalog.networks.values() if n.pk == ticket.network_pk), None)
    arch = request.GET.get("arch", "")
    kernel_pk = ticket.kernels.get(arch) or next(iter(ticket.kernels.values()), None)
    kernel = catalog.kernel_by_pk(kernel_pk) if kernel_pk else None
    try:
        mac = normalise_mac(request.GET.get("mac", ""))
    except ValidationError:
        mac = ""
    # The node the script was for, as the history needs it (no query: the token names it).
    node = Node(pk=ticket.node_pk, mac=mac) if ticket.node_pk else None
    return history.Event(
        kind, network=network, farmer_id=ticket.farmer_id, node=node,
        mac=mac, kernel=kernel, token=token, card=card,
        attempt=attempt, error=_error(request.GET.get("err")),
        seconds=_seconds(request.GET.get("t0"), request.GET.get("t1")),
    )  # fmt: skip


def _count_boot(event: history.Event, ticket: Ticket) -> None:
    network = event.network.slug if event.network else "-"
    if event.kind == BootEvent.Kind.ARRIVED:
        metrics.BOOTS.labels(network, "arrived").inc()
        metrics.BOOT_SECONDS.labels(network).observe(max(0.0, ticket.age))
    else:
        metrics.BOOTS.labels(network, event.kind).inc()
