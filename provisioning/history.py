"""Boot history: one small insert per script or kernel served, pruned by age."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.db import DatabaseError
from django.http import HttpRequest
from django.utils import timezone

from .http import client_ip
from .models import BootEvent, Kernel, Network, Node

logger = logging.getLogger("zosboot.history")


def record(
    request: HttpRequest,
    kind: str,
    *,
    network: Network | None = None,
    farmer_id: int | None = None,
    node: Node | None = None,
    mac: str = "",
    kernel: Kernel | None = None,
) -> None:
    """Record what was served. A failure to record never stops a node from booting."""
    try:
        BootEvent.objects.create(
            kind=kind,
            client_ip=client_ip(request),
            network=network,
            farmer_id=farmer_id,
            node=node,
            mac=mac or (node.mac if node else ""),
            kernel_name=kernel.name if kernel else "",
            kernel_sha256=kernel.sha256 if kernel else "",
            user_agent=request.META.get("HTTP_USER_AGENT", "")[:200],
            path=request.path[:300],
        )
    except DatabaseError:
        logger.exception("could not record boot event for %s", request.path[:300])


def prune(days: int, *, dry_run: bool = False) -> int:
    """Delete events older than `days`; return how many (would be) deleted."""
    old = BootEvent.objects.filter(created_at__lt=timezone.now() - timedelta(days=days))
    if dry_run:
        return old.count()
    deleted, _ = old.delete()
    return deleted
