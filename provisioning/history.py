"""Boot history: one row per script or kernel served, written in batches, pruned by age.

In a storm every script request would otherwise wait for its own INSERT (and, on SQLite, for
the one write lock). Each worker instead queues the events and a background thread writes them
with one bulk INSERT every `ZOSBOOT_HISTORY_FLUSH_SECONDS`; what is queued when the worker
stops (a graceful shutdown, Ctrl-C) is written on the way out. With the setting at 0 each
event is written in its request.
"""

from __future__ import annotations

import atexit
import functools
import logging
import os
import threading
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError, close_old_connections, connection, models, transaction
from django.db.models.constants import OnConflict
from django.http import HttpRequest
from django.utils import timezone

from . import running
from .clients import client_ip
from .models import BootEvent, Kernel, Network, Node

logger = logging.getLogger("zosboot.history")

# Beyond this many queued events (the database is down), the oldest are dropped and said so.
MAX_QUEUED = 50_000
BATCH_SIZE = 500


@dataclass(frozen=True)
class Event:
    """What the boot history records of one answer or download."""

    kind: str
    network: Network | None = None
    farmer_id: int | None = None
    node: Node | None = None
    mac: str = ""
    kernel: Kernel | None = None
    #: The boot it belongs to (the token of the script served), and what the node reported.
    token: str = ""
    card: int = 0
    attempt: int = 0
    error: str = ""
    seconds: float | None = None


def record(request: HttpRequest, event: Event) -> None:
    """Record what was served. A failure to record never stops a node from booting."""
    # Plain values: the model instance is made by the writer, off the request's time.
    values = dict(
        created_at=timezone.now(),
        kind=event.kind,
        client_ip=client_ip(request),
        network_id=event.network.pk if event.network else None,
        farmer_id=event.farmer_id,
        node_id=event.node.pk if event.node else None,
        mac=event.mac or (event.node.mac if event.node else ""),
        kernel_name=event.kernel.name if event.kernel else "",
        kernel_sha256=event.kernel.sha256 if event.kernel else "",
        user_agent=request.META.get("HTTP_USER_AGENT", "")[:200],
        path=request.path[:300],
        token=event.token,
        card=event.card,
        attempt=event.attempt,
        error=event.error,
        seconds=event.seconds,
    )
    if settings.ZOSBOOT_HISTORY_FLUSH_SECONDS <= 0:
        _write([values])
    else:
        queue.add(values)


def flush() -> int:
    """Write what this worker has queued now; how many events."""
    return queue.flush()


def _write(events: list[dict]) -> None:
    try:
        _insert(events)
        running.note(events)
    except DatabaseError:
        logger.exception("could not record %d boot event(s)", len(events))


def _insert(events: list[dict]) -> None:
    """Many events in a few multi-row INSERTs, from their plain values. The ORM's bulk_create
    makes a model instance and prepares every field of every row, which cost the workers as
    much CPU as serving the scripts; and few statements keep the writer from asking for
    Python's lock between rows while the worker serves scripts."""
    table, names, columns = _insert_statement()
    # A report replayed to another worker or instance than the first is not written twice
    # (the bootevent_one_report constraint); the rest of the batch is written all the same.
    insert = connection.ops.insert_statement(on_conflict=OnConflict.IGNORE)
    suffix = connection.ops.on_conflict_suffix_sql([], OnConflict.IGNORE, None, None) or ""
    per_statement = max(1, 999 // len(columns))  # SQLite's smallest limit of parameters
    rows = [[adapt(event.get(name, default)) for name, default, adapt in columns]
            for event in events]  # fmt: skip
    row_marks = "(" + ", ".join(["%s"] * len(columns)) + ")"
    with transaction.atomic(savepoint=False), connection.cursor() as cursor:
        for start in range(0, len(rows), per_statement):
            chunk = rows[start : start + per_statement]
            values = ", ".join([row_marks] * len(chunk))
            sql = f"{insert} {table} ({names}) VALUES {values} {suffix}"  # noqa: S608
            cursor.execute(sql, [value for row in chunk for value in row])


@functools.cache
def _insert_statement() -> tuple[str, str, tuple]:
    """The table and columns of a boot event, and for each column: the event's key, its
    default, and how its value is put to the database."""
    ops = connection.ops
    fields = [field for field in BootEvent._meta.concrete_fields if not field.primary_key]
    columns = []
    for field in fields:
        if isinstance(field, models.DateTimeField):
            adapt = ops.adapt_datetimefield_value
        elif isinstance(field, models.GenericIPAddressField):
            adapt = ops.adapt_ipaddressfield_value
        else:
            adapt = _as_is
        columns.append((field.attname, field.get_default(), adapt))
    names = ", ".join(ops.quote_name(field.column) for field in fields)
    return ops.quote_name(BootEvent._meta.db_table), names, tuple(columns)


def _as_is(value):
    return value


class _Queue:
    """Events waiting for the writer thread of this process."""

    def __init__(self) -> None:
        self._events: list[dict] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._pid: int | None = None  # the process whose writer thread runs (workers fork)

    def add(self, event: dict) -> None:
        with self._lock:
            if self._pid != os.getpid():
                self._start()
            self._events.append(event)
            if len(self._events) > MAX_QUEUED:
                dropped = len(self._events) - MAX_QUEUED
                del self._events[:dropped]
                logger.error("boot history queue full: dropped %d old event(s)", dropped)

    def flush(self) -> int:
        with self._lock:
            events, self._events = self._events, []
        if events:
            _write(events)
        return len(events)

    def _start(self) -> None:
        self._pid = os.getpid()
        self._events = []  # a forked child does not write its parent's events twice
        thread = threading.Thread(target=self._run, name="boot-history", daemon=True)
        thread.start()

    def _run(self) -> None:
        while True:
            self._wake.wait(settings.ZOSBOOT_HISTORY_FLUSH_SECONDS)
            self._wake.clear()
            try:
                self.flush()
            except Exception:  # the writer must outlive any one failure
                logger.exception("boot history writer failed")
            close_old_connections()


queue = _Queue()
# A graceful stop (SIGTERM, Ctrl-C) ends the process normally: write what is left.
atexit.register(flush)


def prune(days: int, *, dry_run: bool = False) -> int:
    """Delete events older than `days`; return how many (would be) deleted."""
    old = BootEvent.objects.filter(created_at__lt=timezone.now() - timedelta(days=days))
    if dry_run:
        return old.count()
    deleted, _ = old.delete()
    return deleted
