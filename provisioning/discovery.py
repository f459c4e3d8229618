"""Nodes that find the service on their own: a MAC nobody registered becomes a pending node.

Made-up MACs must not crowd out real nodes. A real node waiting for approval asks again every
ZOSBOOT_DISCOVERY_RETRY_SECONDS; a made-up one is usually asked for once. So:
- one client address records at most ZOSBOOT_DISCOVERY_PER_ADDRESS new pending nodes per
  ZOSBOOT_DISCOVERY_WINDOW_SECONDS (counted in the database, from first_seen and last_ip, so
  the limit holds across workers and instances); beyond it its unknown MACs are told why and
  not recorded;
- when ZOSBOOT_MAX_PENDING_NODES are waiting, room is made by removing the pending nodes
  nobody assigned anything to and that have not asked for the longest, provided they missed
  several retries (STALE_RETRIES): a node that keeps asking is never removed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, F, Q, QuerySet
from django.utils import timezone

from .models import Node

logger = logging.getLogger("zosboot.discovery")

#: A pending node that has not asked for this many retry intervals is stale: it may go to
#: make room. A node that keeps asking is seen every interval.
STALE_RETRIES = 3


@dataclass(frozen=True)
class Discovery:
    """What became of an unknown MAC: the pending node recorded, or why it was not."""

    node: Node | None
    refused: str = ""


def discover(mac: str, ip: str | None) -> Discovery:
    """Record an unknown MAC as pending, within the per-address limit and the overall cap."""
    now = timezone.now()
    with transaction.atomic():
        recent = recent_from(ip, now).count()
        if recent >= settings.ZOSBOOT_DISCOVERY_PER_ADDRESS:
            minutes = settings.ZOSBOOT_DISCOVERY_WINDOW_SECONDS // 60 or 1
            return Discovery(
                None,
                f"too many new machines from {ip or 'this address'} in the last {minutes} minutes",
            )
        if not _room_for_one(now):
            logger.warning(
                "not recording %s: %s nodes pending and none stale enough to remove",
                mac, settings.ZOSBOOT_MAX_PENDING_NODES,
            )  # fmt: skip
            return Discovery(None, "too many machines waiting for approval")
        try:
            with transaction.atomic():
                node, created = Node.objects.get_or_create(
                    mac=mac, defaults={"first_seen": now, "last_seen": now, "last_ip": ip}
                )
        except IntegrityError:  # a concurrent request for the same MAC won the insert
            node, created = Node.objects.get(mac=mac), False
    if created:
        logger.info("discovered new node %s from %s", mac, ip)
        if recent + 1 == settings.ZOSBOOT_DISCOVERY_PER_ADDRESS:
            logger.warning(
                "discovery limit reached for %s: %s new pending nodes in %s s; its further "
                "unknown MACs are refused until older ones leave the window",
                ip, recent + 1, settings.ZOSBOOT_DISCOVERY_WINDOW_SECONDS,
            )  # fmt: skip
    return Discovery(node)


def recent_from(ip: str | None, now=None) -> QuerySet[Node]:
    """Pending nodes first seen from `ip` within the discovery window."""
    since = (now or timezone.now()) - timedelta(seconds=settings.ZOSBOOT_DISCOVERY_WINDOW_SECONDS)
    return Node.objects.pending().filter(last_ip=ip, first_seen__gte=since)


def unassigned() -> QuerySet[Node]:
    """Pending nodes nobody gave anything to (neither farm nor network): those made by
    discovery and never touched. Only these may go to make room."""
    return Node.objects.filter(farm__isnull=True, network__isnull=True)


def _room_for_one(now) -> bool:
    excess = Node.objects.pending().count() - settings.ZOSBOOT_MAX_PENDING_NODES + 1
    if excess <= 0:
        return True
    stale_before = now - timedelta(seconds=STALE_RETRIES * settings.ZOSBOOT_DISCOVERY_RETRY_SECONDS)
    stalest = list(
        unassigned()
        .filter(Q(last_seen__lt=stale_before) | Q(last_seen__isnull=True))
        .order_by(F("last_seen").asc(nulls_first=True), "pk")
        .values_list("pk", flat=True)[:excess]
    )
    if len(stalest) < excess:
        return False
    Node.objects.filter(pk__in=stalest).delete()
    logger.info("made room for new nodes: removed %s stale pending node(s)", len(stalest))
    return True


def pending_by_address(limit: int = 10) -> list[dict]:
    """The addresses most pending nodes came from, with their counts: who is flooding."""
    return list(
        Node.objects.pending()
        .values("last_ip")
        .annotate(nodes=Count("pk"))
        .order_by("-nodes", "last_ip")[:limit]
    )


def mark_seen(node: Node, ip: str | None, *, booted: bool) -> None:
    """One UPDATE: last seen, last address and, when a boot script was served, the count."""
    now = timezone.now()
    changes: dict = {"last_seen": now, "last_ip": ip}
    if node.first_seen is None:
        changes["first_seen"] = now
    if booted:
        changes["boot_count"] = F("boot_count") + 1
    Node.objects.filter(pk=node.pk).update(**changes)
