"""The history in the admin, made for millions of rows: boot events, and each machine's
latest boot ("who runs what")."""

from __future__ import annotations

import ipaddress
import re

from django.contrib import admin
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.urls import reverse
from django.utils.functional import cached_property
from django.utils.html import format_html
from django.utils.http import urlencode
from django.utils.text import Truncator

from .. import running
from ..models import BootEvent, Kernel, LatestBoot
from ..validators import FARMER_ID_MAX, normalise_mac
from .fleet import canonical_mac
from .readonly import ReadOnlyAdmin

SHA256_RE = re.compile(r"[0-9a-f]{64}")


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


@admin.register(BootEvent)
class BootEventAdmin(ReadOnlyAdmin):
    """A history of millions of rows: every filter and search is an indexed lookup (see the
    model's indexes), pages are counted up to a cap, and there is no date drill-down (its
    month and day lists scan the whole history)."""

    list_display = (
        "created_at",
        "kind",
        "client_ip",
        "network",
        "farmer_id",
        "node_mac",
        "kernel_name",
        "short_sha256",
        "short_user_agent",
    )
    list_filter = ("kind", "network", KernelNameFilter, "created_at")
    search_fields = ("mac",)  # a search box; get_search_results decides what a term is
    search_help_text = "A MAC (any form), an IP address, a farm ID, a kernel name or a sha256."
    list_select_related = ("network", "node")
    paginator = BoundedPaginator
    show_full_result_count = False

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        return queryset.filter(**_event_lookup(term)), False

    @admin.display(description="MAC", ordering="mac")
    def node_mac(self, event: BootEvent) -> str:
        return event.mac or "-"

    @admin.display(description="sha256")
    def short_sha256(self, event: BootEvent) -> str:
        return event.kernel_sha256[:16]

    @admin.display(description="user agent")
    def short_user_agent(self, event: BootEvent) -> str:
        return Truncator(event.user_agent).chars(40)


def _event_lookup(term: str) -> dict:
    """One exact, indexed lookup for what the term looks like."""
    try:
        return {"mac": normalise_mac(term)}
    except ValidationError:
        pass
    try:
        return {"client_ip": str(ipaddress.ip_address(term))}
    except ValueError:
        pass
    if term.isdigit():
        return {"farmer_id": int(term)} if int(term) <= FARMER_ID_MAX else {"pk__in": []}
    if SHA256_RE.fullmatch(term.lower()):
        return {"kernel_sha256": term.lower()}
    return {"kernel_name": term}


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

    list_display = (
        "machine",
        "farmer_id",
        "network",
        "kernel_name",
        "kernel_since",
        "kernel_at",
        "script_at",
        "failed",
    )
    list_filter = (FailedOnTheWayFilter, "network", "kernel_name")
    search_fields = ("=mac", "=client_ip", "=farmer_id", "kernel_name")
    list_select_related = ("network",)
    show_full_result_count = False

    def get_search_results(self, request, queryset, search_term):
        return super().get_search_results(request, queryset, canonical_mac(search_term))

    @admin.display(description="machine", ordering="key")
    def machine(self, row: LatestBoot) -> str:
        return row.mac or f"{row.client_ip} (MAC not known)"

    @admin.display(description="no kernel after its script", boolean=True)
    def failed(self, row: LatestBoot) -> bool:
        return row.failed_on_the_way


def running_link(count: int, **filters) -> str:
    """A link to the machines whose latest boot matches, for the kernel and network lists."""
    if not count:
        return "-"
    url = reverse("admin:provisioning_latestboot_changelist") + "?" + urlencode(filters)
    return format_html('<a href="{}">{} machine(s)</a>', url, count)
