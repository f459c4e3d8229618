"""Which boots failed today, and why: the fleet's machines whose latest boot moved in the last
24 hours, each
booted, in progress, stuck (nothing for 15 minutes after its script or download) or failing
(failed downloads, no network, a kernel that would not start), with the sentence of what to
check. One indexed query over LatestBoot (a row a machine), however long the history."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import OuterRef, Subquery
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.text import slugify

from .. import timeline
from ..models import BootEvent, BootToday, Kernel, Node
from . import search
from .filters import FarmIdFilter
from .readonly import ReadOnlyAdmin


class StateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [(state, state) for state in timeline.State.CHOICES]

    def queryset(self, request, queryset):
        return queryset.filter(state=self.value()) if self.value() else queryset


class TodayFarmFilter(FarmIdFilter):
    lookup = "farmer_id"


class TodayKernelFilter(admin.SimpleListFilter):
    """The kernels in the store (a handful), not a DISTINCT over the fleet."""

    title = "kernel"
    parameter_name = "kernel_name"

    def lookups(self, request, model_admin):
        names = Kernel.objects.order_by("name").values_list("name", flat=True)
        return [(name, name) for name in names]

    def queryset(self, request, queryset):
        return queryset.filter(kernel_name=self.value()) if self.value() else queryset


@admin.register(BootToday)
class BootTodayAdmin(ReadOnlyAdmin):
    list_display = ("machine", "state", "where", "kernel", "last_milestone")
    list_display_links = None  # the machine links to its timeline; nothing here to change
    list_filter = (StateFilter, "network", TodayFarmFilter, TodayKernelFilter)
    search_fields = ("=mac",)  # a search box; get_search_results decides what a term is
    search_help_text = (
        "A MAC (any form, or a part of one), an address (or a part), a farm ID or name, a "
        "kernel name (or a part)."
    )
    list_select_related = ("network",)
    ordering = ("-milestone_at",)
    show_full_result_count = False

    def get_queryset(self, request):
        node = Node.objects.filter(mac=OuterRef("mac")).values("pk")[:1]
        return timeline.today().select_related("network").annotate(_node=Subquery(node))

    def get_search_results(self, request, queryset, search_term):
        if not search_term.strip():
            return queryset, False
        return queryset.filter(search.latest_boot_q(search_term)), False

    @admin.display(description="machine", ordering="key")
    def machine(self, row):
        """Its MAC, linked to the page with its timeline: its node's, or its latest boot's."""
        node = getattr(row, "_node", None)
        if node is not None:
            page = reverse("admin:provisioning_node_change", args=[node])
        else:
            page = reverse("admin:provisioning_latestboot_change", args=[row.pk])
        if not row.mac:
            return format_html(
                '<a href="{}">{}</a> <small>(MAC not known)</small>', page, row.client_ip or "-"
            )
        return format_html('<a href="{}" class="nowrap">{}</a>', page, row.mac)

    @admin.display(description="state: why", ordering="state")
    def state(self, row):
        return format_html(
            '<strong class="zosboot-state state-{}">{}</strong>: {}',
            slugify(row.state), row.state, timeline.reason(row),
        )  # fmt: skip

    @admin.display(description="network, farm", ordering="network__slug")
    def where(self, row):
        network = row.network.slug if row.network else "-"
        return format_html("{}<br><small>farm {}</small>", network, row.farmer_id or "-")

    @admin.display(description="kernel", ordering="kernel_name")
    def kernel(self, row) -> str:
        return row.kernel_name or "-"

    @admin.display(description="last milestone, at", ordering="milestone_at")
    def last_milestone(self, row):
        label = BootEvent.Kind(row.milestone).label if row.milestone else "-"
        at = date_format(timezone.localtime(row.milestone_at), "SHORT_DATETIME_FORMAT")
        return format_html("{}<br><small>{}</small>", label, at)
