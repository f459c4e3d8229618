"""Nodes that find the service on their own: a MAC nobody registered becomes a pending node."""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from .models import Node

logger = logging.getLogger("zosboot.discovery")


def discover(mac: str, ip: str | None) -> Node | None:
    """Record an unknown MAC as pending; None when too many are already waiting.

    The cap keeps a stream of made-up MACs from filling the database.
    """
    if Node.objects.pending().count() >= settings.ZOSBOOT_MAX_PENDING_NODES:
        logger.warning(
            "not recording %s: %s nodes already pending", mac, settings.ZOSBOOT_MAX_PENDING_NODES
        )
        return None
    now = timezone.now()
    try:
        with transaction.atomic():
            node, created = Node.objects.get_or_create(
                mac=mac, defaults={"first_seen": now, "last_seen": now, "last_ip": ip}
            )
    except IntegrityError:  # a concurrent request for the same MAC won the insert
        node = Node.objects.get(mac=mac)
    else:
        if created:
            logger.info("discovered new node %s from %s", mac, ip)
    return node


def mark_seen(node: Node, ip: str | None, *, booted: bool) -> None:
    """One UPDATE: last seen, last address and, when a boot script was served, the count."""
    now = timezone.now()
    changes: dict = {"last_seen": now, "last_ip": ip}
    if node.first_seen is None:
        changes["first_seen"] = now
    if booted:
        changes["boot_count"] = F("boot_count") + 1
    Node.objects.filter(pk=node.pk).update(**changes)
