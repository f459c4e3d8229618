"""Networks, kernels, branch links and farms as the script path reads them: from the worker's
memory, all of them, loaded before the first request and again after every change.

A boot storm after a power cut asks every worker, just restarted, about thousands of farms at
once. Each worker therefore loads the whole configuration in a handful of queries (one per
table, whatever the number of farms) when it starts and whenever the one-row configuration
generation (`ConfigGeneration`) moved, which every change to networks, kernels, links and farms
replaces in its own transaction. A request reads that stamp once, and everything else from
memory: a kernel switch is served by every worker and every instance at the very next request,
and a farm ID nobody registered costs a dictionary miss, never a query nor any memory.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import NamedTuple

from django.db import DEFAULT_DB_ALIAS, connections

from .models import BranchLink, ConfigGeneration, Farm, Kernel, Network


class KnownFarm(NamedTuple):
    """A registered farm, as scripts need it."""

    farmer_id: int
    name: str
    active: bool


@dataclass(frozen=True)
class Catalog:
    """One worker's copy of the configuration, valid for one configuration generation."""

    generation: int | None
    networks: dict[str, Network]
    #: Kernels by name, and each branch link's name to the kernel it points at.
    kernels: dict[str, Kernel]
    by_content: dict[str, Kernel]
    farms: dict[int, KnownFarm]
    by_pk: dict[int, Kernel]

    def network(self, slug: str) -> Network | None:
        """The network of that slug (active or not), its kernels joined in."""
        return self.networks.get(slug)

    def kernel(self, name: str) -> Kernel | None:
        """The kernel of that name, or the one the branch link of that name points at."""
        return self.kernels.get(name)

    def kernel_by_content(self, sha256: str) -> Kernel | None:
        """A registered kernel with these bytes (the oldest, when several names share them)."""
        return self.by_content.get(sha256)

    def kernel_by_pk(self, pk: int) -> Kernel | None:
        return self.by_pk.get(pk)

    def farm(self, farmer_id: int) -> KnownFarm | None:
        return self.farms.get(farmer_id)


def load(generation: int | None) -> Catalog:
    """The whole configuration, in one query per table."""
    networks = {n.slug: n for n in Network.objects.select_related(*Network.POINTERS_JOINED)}
    kernels: dict[str, Kernel] = {}
    by_pk: dict[int, Kernel] = {}
    by_content: dict[str, Kernel] = {}
    for kernel in Kernel.objects.order_by("-pk").defer("notes", "signature"):
        kernels[kernel.name] = by_pk[kernel.pk] = kernel
        by_content[kernel.sha256] = kernel  # the oldest last, so it stays
    for name, kernel_id in BranchLink.objects.values_list("name", "kernel_id"):
        if name not in kernels and kernel_id in by_pk:
            kernels[name] = by_pk[kernel_id]
    farms = {
        farmer_id: KnownFarm(farmer_id, name, active)
        for farmer_id, name, active in Farm.objects.values_list("farmer_id", "name", "active")
    }
    return Catalog(generation, networks, kernels, by_content, farms, by_pk)


_lock = threading.Lock()
_catalog: Catalog | None = None


_GENERATION_SQL = (
    f"SELECT value FROM {ConfigGeneration._meta.db_table} "  # noqa: S608 (no outside input)
    f"WHERE id = {ConfigGeneration.ROW:d}"
)


def _generation() -> int | None:
    # The database driver's own cursor: this runs on every script request, and the ORM would
    # compile the same query each time.
    database = connections[DEFAULT_DB_ALIAS]
    driver = database.connection
    if driver is None:
        database.ensure_connection()
        driver = database.connection
    cursor = driver.cursor()
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
        catalog = _catalog
        if catalog is not None and catalog.generation == generation:
            return catalog  # another thread of this worker loaded it meanwhile
        # Read after the generation: a change committed in between makes the next request
        # reload again, never keeps a stale copy.
        _catalog = catalog = load(generation)
    return catalog


def forget() -> None:
    """Drop this worker's copy (tests; the generation check makes it unnecessary otherwise)."""
    global _catalog
    _catalog = None
