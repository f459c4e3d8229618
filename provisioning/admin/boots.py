"""Which boots failed today, and why: the fleet's machines whose latest boot moved in the last
24 hours, each
booted, in progress, stuck (nothing for 15 minutes after its script or download) or failing
(failed downloads, no network, a kernel that would not start), with the sentence of what to
check. One indexed query over LatestBoot (a row a machine), however long the history."""

from __future__ import annotations

from django.contrib import admin
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.html import format_html
from django.utils.http import urlencode

from .. import timeline
from ..models import BootEvent, BootToday, Kernel
from .fleet import FarmIdFilter
from .readonly import ReadOnlyAdmin

#: The boots a node's page shows (a machine in a reboot loop boots every few minutes).
TIMELINE_BOOTS = 20


def node_timeline(mac: str) -> str:
    """A machine's latest boots, milestone by milestone, for its admin page."""
    boots = timeline.node_timeline(mac)[:TIMELINE_BOOTS]
    return render_to_string(
        "admin/provisioning/node_timeline.html", {"boots": boots, "days": timeline.DAYS}
    )


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
    list_display = (
        "machine", "state", "why", "network", "farmer_id", "kernel_name", "last_milestone",
        "milestone_at",
    )  # fmt: skip
    list_display_links = None  # the machine links to its events; nothing here to change
    list_filter = (StateFilter, "network", TodayFarmFilter, TodayKernelFilter)
    search_fields = ("=farmer_id", "=mac", "=client_ip")
    list_select_related = ("network",)
    ordering = ("-milestone_at",)
    show_full_result_count = False

    def get_queryset(self, request):
        return timeline.today().select_related("network")

    @admin.display(description="machine", ordering="key")
    def machine(self, row):
        label = row.mac or f"{row.client_ip} (MAC not known)"
        if not row.mac:
            return label
        url = reverse("admin:provisioning_bootevent_changelist") + "?" + urlencode({"q": row.mac})
        return format_html('<a href="{}" title="its boot events">{}</a>', url, label)

    @admin.display(description="state", ordering="state")
    def state(self, row) -> str:
        return row.state

    @admin.display(description="why")
    def why(self, row) -> str:
        return timeline.reason(row)

    @admin.display(description="last milestone", ordering="milestone")
    def last_milestone(self, row) -> str:
        return BootEvent.Kind(row.milestone).label if row.milestone else "-"
