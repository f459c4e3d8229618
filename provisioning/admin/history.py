"""The history in the admin, made for millions of rows: boot events, and each machine's
latest boot ("who runs what")."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.views.main import ORDER_VAR, ChangeList
from django.core.paginator import Paginator
from django.db.models import OuterRef, Subquery
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.functional import cached_property
from django.utils.html import format_html
from django.utils.http import urlencode
from django.utils.text import Truncator

from .. import running, timeline
from ..models import BootEvent, Kernel, LatestBoot, Node
from . import search
from .filters import DateRangeFilter, SeenFilter
from .readonly import ReadOnlyAdmin


class BoundedPaginator(Paginator):
    """Counts at most COUNT_CAP rows: a history of millions is never counted in full to
    draw page links (the template says "more than" when the cap is reached)."""

    COUNT_CAP = 10_000

    @cached_property
    def count(self) -> int:
        return self.object_list.order_by()[: self.COUNT_CAP + 1].count()

    @property
    def capped(self) -> bool:
        return self.count > self.COUNT_CAP


class KernelNameFilter(admin.SimpleListFilter):
    """The kernels in the store, not a DISTINCT over millions of events to find names."""

    title = "kernel"
    parameter_name = "kernel_name"

    def lookups(self, request, model_admin):
        return [
            (name, name) for name in Kernel.objects.order_by("name").values_list("name", flat=True)
        ]

    def queryset(self, request, queryset):
        return queryset.filter(kernel_name=self.value()) if self.value() else queryset


class TimeSortedChangeList(ChangeList):
    """Sorted only by what `sortable_by` names, even when a URL asks otherwise: on a history
    of millions, sorting by another column sorts the whole history. A URL asking for another
    column gets the usual order."""

    def get_ordering(self, request, queryset):
        asked = self.params.get(ORDER_VAR)
        if asked:
            kept = [part for part in asked.split(".") if self._sortable(part)]
            if kept:
                self.params[ORDER_VAR] = ".".join(kept)
            else:
                del self.params[ORDER_VAR]
        return super().get_ordering(request, queryset)

    def _sortable(self, part: str) -> bool:
        index = part.rpartition("-")[2]
        if not (index.isascii() and index.isdigit() and len(index) < 4):
            return False
        if int(index) >= len(self.list_display):
            return False
        return self.list_display[int(index)] in self.sortable_by


@admin.register(BootEvent)
class BootEventAdmin(ReadOnlyAdmin):
    """A history of millions of rows: every filter and search is an indexed lookup (see the
    model's indexes), pages are counted up to a cap, it sorts by time only, the filters count
    nothing ("Show counts" would count the whole history once per choice), and there is no date
    drill-down (its month and day lists scan the whole history)."""

    list_display = (
        "created_at",
        "kind",
        "machine",
        "network",
        "farmer_id",
        "kernel",
        "short_user_agent",
    )
    list_filter = ("kind", "network", KernelNameFilter, "created_at", DateRangeFilter)
    search_fields = ("mac",)  # a search box; get_search_results decides what a term is
    search_help_text = (
        "A MAC (any form, or a part of one), an address (or a part), a farm ID or name, a "
        "kernel name (or a part), a sha256 or its first characters."
    )
    list_select_related = ("network",)
    sortable_by = ("created_at",)
    show_facets = admin.ShowFacets.NEVER
    paginator = BoundedPaginator
    show_full_result_count = False
    # The full values, not the shortened ones the list shows.
    csv_fields = (
        "created_at", "kind", "client_ip", "mac", "network__slug", "farmer_id", "kernel_name",
        "kernel_sha256", "user_agent", "path",
    )  # fmt: skip

    def get_changelist(self, request, **kwargs):
        return TimeSortedChangeList

    def get_search_results(self, request, queryset, search_term):
        if not search_term.strip():
            return queryset, False
        return queryset.filter(search.boot_event_q(search_term)), False

    @admin.display(description="MAC / address")
    def machine(self, event: BootEvent):
        if event.mac and event.client_ip:
            return format_html(
                '<span class="nowrap">{}</span><br><small>{}</small>', event.mac, event.client_ip
            )
        if event.mac:
            return format_html('<span class="nowrap">{}</span>', event.mac)
        return event.client_ip or "-"

    @admin.display(description="kernel / sha256")
    def kernel(self, event: BootEvent):
        if not event.kernel_name:
            return "-"
        if not event.kernel_sha256:
            return event.kernel_name
        return format_html(
            "{}<br><small><code>{}</code></small>", event.kernel_name, event.kernel_sha256[:16]
        )

    @admin.display(description="user agent")
    def short_user_agent(self, event: BootEvent) -> str:
        return Truncator(event.user_agent).chars(24)


class FailedOnTheWayFilter(admin.SimpleListFilter):
    title = "boot"
    parameter_name = "boot"

    def lookups(self, request, model_admin):
        return [("failed", "script, then no kernel (last hour)")]

    def queryset(self, request, queryset):
        if self.value() == "failed":
            return queryset & running.failed_on_the_way()
        return queryset


@admin.register(LatestBoot)
class LatestBootAdmin(ReadOnlyAdmin):
    """Which machine runs which kernel, since when; boots that stopped on the way."""

    list_display = ("machine", "farmer_id", "network", "kernel", "last_seen", "failed")
    list_display_links = None  # the machine links to its node and its boot events
    list_filter = (FailedOnTheWayFilter, SeenFilter, "network", "kernel_name")
    search_fields = ("=mac",)  # a search box; get_search_results decides what a term is
    search_help_text = (
        "A MAC (any form, or a part of one), an address (or a part), a farm ID or name, a "
        "kernel name (or a part) or a sha256 prefix."
    )
    list_select_related = ("network",)
    show_full_result_count = False
    readonly_fields = ("records", "timeline")

    def get_queryset(self, request):
        node = Node.objects.filter(mac=OuterRef("mac")).values("pk")[:1]
        return super().get_queryset(request).annotate(_node=Subquery(node))

    def get_search_results(self, request, queryset, search_term):
        if not search_term.strip():
            return queryset, False
        return queryset.filter(search.latest_boot_q(search_term)), False

    @admin.display(description="machine", ordering="key")
    def machine(self, row: LatestBoot):
        return machine_links(row.mac, row.client_ip, getattr(row, "_node", None))

    @admin.display(description="kernel, since", ordering="kernel_name")
    def kernel(self, row: LatestBoot):
        if not row.kernel_name:
            return "-"
        return format_html(
            "{}<br><small>since {}</small>", row.kernel_name, _when(row.kernel_since)
        )

    @admin.display(description="latest script, kernel", ordering="script_at")
    def last_seen(self, row: LatestBoot):
        return format_html("script {}<br>kernel {}", _when(row.script_at), _when(row.kernel_at))

    @admin.display(description="stopped on the way", boolean=True)
    def failed(self, row: LatestBoot) -> bool:
        return row.failed_on_the_way

    @admin.display(description="records")
    def records(self, row: LatestBoot):
        return machine_links(row.mac, row.client_ip, getattr(row, "_node", None))

    @admin.display(description="its boots")
    def timeline(self, row: LatestBoot):
        return node_timeline(row.mac) if row.mac else "-"


def _when(moment) -> str:
    return date_format(timezone.localtime(moment), "SHORT_DATETIME_FORMAT") if moment else "-"


def machine_links(mac: str, address: str | None, node_pk: int | None):
    """A machine as the lists show it: its MAC, linked to its node when it has one, and a
    link to its boot events (by MAC, or by address when its MAC is not known)."""
    events = reverse("admin:provisioning_bootevent_changelist")
    if not mac:
        url = events + "?" + urlencode({"client_ip": address or ""})
        return format_html(
            '{} <small>(MAC not known)</small><br><small><a href="{}">boot events</a></small>',
            address or "-", url,
        )  # fmt: skip
    url = events + "?" + urlencode({"mac": mac})
    if node_pk is None:
        return format_html(
            '<span class="nowrap">{}</span><br><small><a href="{}">boot events</a></small>',
            mac, url,
        )  # fmt: skip
    node = reverse("admin:provisioning_node_change", args=[node_pk])
    return format_html(
        '<a href="{}" class="nowrap">{}</a><br><small><a href="{}">boot events</a></small>',
        node, mac, url,
    )  # fmt: skip


def running_link(count: int, **filters) -> str:
    """A link to the machines whose latest boot matches, for the kernel and network lists."""
    if not count:
        return "-"
    url = reverse("admin:provisioning_latestboot_changelist") + "?" + urlencode(filters)
    return format_html('<a href="{}">{} machine(s)</a>', url, count)


#: The boots a node's page shows (a machine in a reboot loop boots every few minutes).
TIMELINE_BOOTS = 20


def node_timeline(mac: str) -> str:
    """A machine's latest boots, milestone by milestone, for its node and latest-boot pages."""
    boots = timeline.node_timeline(mac)[:TIMELINE_BOOTS]
    return render_to_string(
        "admin/provisioning/node_timeline.html", {"boots": boots, "days": timeline.DAYS}
    )
