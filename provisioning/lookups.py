"""Networks, kernels and farms as the script path reads them: from the worker's memory.

A boot storm asks the same few questions thousands of times (which kernel does `prod` boot? is
farm 1234 active?). Each worker keeps the answers and, once per request, reads the one-row
configuration generation (`ConfigGeneration`), which every change to networks, kernels and
farms replaces in its own transaction. When it moved, the worker drops its copy, so a kernel
switch is served by every worker and every instance at the very next request.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from django.db import connection

from .models import BranchLink, ConfigGeneration, Farm, Kernel, Network

# Kernels and farms are looked up by what clients send; bound what made-up names can fill.
MAX_REMEMBERED = 4096


@dataclass
class Catalog:
    """One worker's copy, valid for one configuration generation."""

    generation: int | None
    networks: dict[str, Network]
    kernels: dict[str, Kernel | None] = field(default_factory=dict)
    farms: dict[int, Farm | None] = field(default_factory=dict)
    by_content: dict[str, Kernel] | None = None

    def network(self, slug: str) -> Network | None:
        """The network of that slug (active or not), its kernels joined in."""
        return self.networks.get(slug)

    def kernel(self, name: str) -> Kernel | None:
        """The kernel of that name, or the one the branch link of that name points at."""
        if name not in self.kernels:
            found = Kernel.objects.filter(name=name).first()
            if found is None:
                link = BranchLink.objects.select_related("kernel").filter(name=name).first()
                found = link.kernel if link else None
            _remember(self.kernels, name, found)
        return self.kernels[name]

    def kernel_by_content(self, sha256: str) -> Kernel | None:
        """A registered kernel with these bytes (the oldest, when several names share them)."""
        if self.by_content is None:
            self.by_content = {}
            for kernel in Kernel.objects.order_by("-pk"):
                self.by_content[kernel.sha256] = kernel
        return self.by_content.get(sha256)

    def farm(self, farmer_id: int) -> Farm | None:
        if farmer_id not in self.farms:
            found = Farm.objects.filter(farmer_id=farmer_id).only("farmer_id", "name", "active")
            _remember(self.farms, farmer_id, found.first())
        return self.farms[farmer_id]


_lock = threading.Lock()
_catalog: Catalog | None = None


_GENERATION_SQL = (
    f"SELECT value FROM {ConfigGeneration._meta.db_table} "  # noqa: S608 (no outside input)
    f"WHERE id = {ConfigGeneration.ROW:d}"
)


def _generation() -> int | None:
    # The database driver's own cursor: this runs on every script request, and the ORM would
    # compile the same query each time.
    connection.ensure_connection()
    cursor = connection.connection.cursor()
    try:
        cursor.execute(_GENERATION_SQL)
        row = cursor.fetchone()
    finally:
        cursor.close()
    return row[0] if row else None


def current() -> Catalog:
    """This worker's copy, reloaded first if the configuration changed since it was made.
    Call it once per request and ask the returned catalog."""
    global _catalog
    generation = _generation()
    catalog = _catalog
    if catalog is not None and catalog.generation == generation:
        return catalog
    with _lock:
        # Read after the generation: a change committed in between makes the next request
        # reload again, never keeps a stale copy.
        rows = Network.objects.select_related(*Network.POINTERS_JOINED)
        networks = {n.slug: n for n in rows}
        _catalog = catalog = Catalog(generation, networks)
    return catalog


def _remember(table: dict, key, value) -> None:
    if len(table) >= MAX_REMEMBERED:
        table.clear()
    table[key] = value


def forget() -> None:
    """Drop this worker's copy (tests; the generation check makes it unnecessary otherwise)."""
    global _catalog
    _catalog = None
