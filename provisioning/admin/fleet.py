"""Farms and nodes in the admin, and their audit trail."""

from __future__ import annotations

import ipaddress

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.utils import unquote
from django.contrib.admin.widgets import AutocompleteSelect
from django.db.models import Count, OuterRef, Q, Subquery
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode

from .. import discovery
from ..models import Arch, Farm, FleetChange, Kernel, LatestBoot, Network, Node
from . import search
from .filters import FarmIdFilter, NotSeenFilter
from .history import node_timeline
from .readonly import ReadOnlyAdmin
from .search import canonical_mac


class RecordedAdmin(admin.ModelAdmin):
    """Farms and nodes: each save and delete in the admin goes into the fleet's trail, and
    their History button shows that trail (approvals, enabling and disabling, the API's
    changes: not only this admin's edits)."""

    object_history_template = "admin/provisioning/fleet_history.html"

    def history_view(self, request, object_id, extra_context=None):
        obj = self.get_object(request, unquote(object_id))
        extra = dict(extra_context or {})
        if obj is not None:
            trail = _trail(obj)
            extra.update(
                trail=trail.select_related("changed_by")[:TRAIL_SHOWN],
                trail_count=trail.count(),
                trail_url=_trail_url(obj),
                trail_shown=TRAIL_SHOWN,
            )
        return super().history_view(request, object_id, extra_context=extra)

    def save_model(self, request, obj, form, change: bool) -> None:
        super().save_model(request, obj, form, change)
        what = f"changed {', '.join(form.changed_data)}" if change else "created"
        if not change or form.changed_data:
            FleetChange.record(obj, what, user=request.user)

    def delete_model(self, request, obj) -> None:
        FleetChange.record(obj, "deleted", user=request.user)
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset) -> None:
        for obj in queryset:
            FleetChange.record(obj, "deleted", user=request.user)
        super().delete_queryset(request, queryset)


#: How many changes the History page shows (the trail's list has them all).
TRAIL_SHOWN = 100


def _trail(obj: Farm | Node):
    """A node's changes, or a farm's (its own and its nodes')."""
    if isinstance(obj, Node):
        return FleetChange.objects.filter(mac=obj.mac)
    return FleetChange.objects.filter(farmer_id=obj.farmer_id)


def _trail_url(obj: Farm | Node) -> str:
    where = {"mac": obj.mac} if isinstance(obj, Node) else {"farmer_id": obj.farmer_id}
    return reverse("admin:provisioning_fleetchange_changelist") + "?" + urlencode(where)


def node_records(node: Node):
    """Links from a node to its boot events, its latest boot and its change trail."""
    events = reverse("admin:provisioning_bootevent_changelist") + "?" + urlencode({"mac": node.mac})
    links = [format_html('<a href="{}">boot events</a>', events)]
    latest = LatestBoot.objects.filter(mac=node.mac).values_list("pk", flat=True).first()
    if latest is not None:
        url = reverse("admin:provisioning_latestboot_change", args=[latest])
        links.append(format_html('<a href="{}">latest boot</a>', url))
    changes = FleetChange.objects.filter(mac=node.mac).count()
    links.append(format_html('<a href="{}">{} change(s)</a>', _trail_url(node), changes))
    return format_html_join(" · ", "{}", ((link,) for link in links))


@admin.register(Farm)
class FarmAdmin(RecordedAdmin):
    list_display = ("farmer_id", "name", "active", "node_count")
    list_filter = ("active",)
    search_fields = ("=farmer_id", "name", "notes")
    ordering = ("farmer_id",)  # the count below drops the model's ordering

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_nodes=Count("nodes"))

    @admin.display(description="nodes", ordering="_nodes")
    def node_count(self, farm: Farm) -> int:
        return farm._nodes


class PendingFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return [
            ("pending", "waiting for approval"),
            ("enabled", "enabled"),
            ("disabled", "disabled"),
        ]

    def queryset(self, request, queryset):
        pending = Q(farm__isnull=True) | Q(network__isnull=True)
        if self.value() == "pending":
            return queryset.filter(pending)
        if self.value() == "enabled":
            return queryset.exclude(pending).filter(enabled=True)
        if self.value() == "disabled":
            return queryset.exclude(pending).filter(enabled=False)
        return queryset


class PendingAddressFilter(admin.SimpleListFilter):
    """The addresses most waiting nodes came from, with their counts: a flood of made-up MACs
    shows up here at the top (select them all and delete)."""

    title = "waiting nodes by address"
    parameter_name = "pending_from"
    NO_ADDRESS = "-"

    def lookups(self, request, model_admin):
        return [
            (
                row["last_ip"] or self.NO_ADDRESS,
                f"{row['last_ip'] or 'no address'} ({row['nodes']})",
            )
            for row in discovery.pending_by_address()
        ]

    def get_facet_counts(self, pk_attname, filtered_qs):
        return {}  # each choice carries its count already

    def choices(self, changelist):
        # Django's, without the facet counts it would add after the counts the labels carry.
        yield {
            "selected": self.value() is None,
            "query_string": changelist.get_query_string(remove=[self.parameter_name]),
            "display": "All",
        }
        for lookup, title in self.lookup_choices:
            yield {
                "selected": self.value() == str(lookup),
                "query_string": changelist.get_query_string({self.parameter_name: lookup}),
                "display": title,
            }

    def queryset(self, request, queryset):
        value = self.value()
        if not value:
            return queryset
        address = None
        if value != self.NO_ADDRESS:
            try:
                address = str(ipaddress.ip_address(value))
            except ValueError as exc:
                raise IncorrectLookupParameters("not an address") from exc
        return queryset.filter(Q(farm__isnull=True) | Q(network__isnull=True), last_ip=address)


class AssignForm(forms.Form):
    farm = forms.ModelChoiceField(
        queryset=Farm.objects.filter(active=True),
        # Searched as typed (the farm admin's search), not a dropdown of every farm.
        widget=AutocompleteSelect(Node._meta.get_field("farm"), admin.site),
    )
    network = forms.ModelChoiceField(queryset=Network.objects.filter(active=True))


@admin.register(Node)
class NodeAdmin(RecordedAdmin):
    list_display = (
        "mac", "status", "farm", "network", "running", "last_seen_from", "boot_count",
    )  # fmt: skip
    list_filter = (
        PendingFilter, PendingAddressFilter, NotSeenFilter, "network", FarmIdFilter, "enabled",
    )  # fmt: skip
    search_fields = ("mac", "last_ip", "farm__name", "=farm__farmer_id", "notes")
    search_help_text = (
        "A MAC (any form, or a part of one), an address (or a part), a farm ID or a farm's "
        "name, or words of the notes."
    )
    list_select_related = ("farm", "network", *(f"network__{j}" for j in Network.POINTERS_JOINED),
                           "kernel_override", "link_override__kernel")  # fmt: skip
    autocomplete_fields = ("farm", "kernel_override", "link_override")
    readonly_fields = (
        "records", "timeline", "first_seen", "last_seen", "last_ip", "boot_count", "created_at",
    )  # fmt: skip
    actions = ["assign", "enable", "disable"]

    def get_queryset(self, request):
        latest = LatestBoot.objects.filter(mac=OuterRef("mac"))
        running = latest.values("kernel_name")[:1]
        arch = Kernel.objects.filter(name=OuterRef("_running")).values("arch")[:1]
        return (
            super()
            .get_queryset(request)
            .annotate(_running=Subquery(running), _latest=Subquery(latest.values("pk")[:1]))
            .annotate(_running_arch=Subquery(arch))
        )

    def get_search_results(self, request, queryset, search_term):
        found, duplicates = super().get_search_results(request, queryset, search_term)
        more = search.node_q(search_term)
        if more != search.NOTHING:
            found = found | queryset.filter(more)
        return found, duplicates

    @admin.display(description="status")
    def status(self, node: Node) -> str:
        if node.is_pending:
            return "waiting for approval"
        return "enabled" if node.enabled else "disabled"

    @admin.display(description="runs (latest boot)", ordering="_running")
    def running(self, node: Node):
        """What the node runs (its latest boot), and what it boots next when that differs:
        the network's kernel is what it will boot, not what it runs."""
        name = getattr(node, "_running", None) or ""
        configured = node.kernel_for(getattr(node, "_running_arch", None) or Arch.AMD64)
        nxt = configured.name if configured else ""
        if not name:
            return format_html("-<br><small>next boot: {}</small>", nxt) if nxt else "-"
        url = reverse("admin:provisioning_latestboot_change", args=[node._latest])
        if not nxt or nxt == name:
            return format_html('<a href="{}">{}</a>', url, name)
        return format_html('<a href="{}">{}</a><br><small>next boot: {}</small>', url, name, nxt)

    @admin.display(description="last seen, from", ordering="last_seen")
    def last_seen_from(self, node: Node):
        if node.last_seen is None:
            return "never"
        seen = date_format(timezone.localtime(node.last_seen), "SHORT_DATETIME_FORMAT")
        return format_html("{}<br><small>{}</small>", seen, node.last_ip or "-")

    @admin.display(description="records")
    def records(self, node: Node):
        """Its boot events, its latest boot and its change trail."""
        if node.pk is None:
            return "-"
        return node_records(node)

    @admin.display(description="its boots")
    def timeline(self, node: Node):
        """Its boots of the last days, milestone by milestone, from what it reported."""
        return node_timeline(node.mac) if node.pk is not None else "-"

    @admin.action(description="Approve: assign a farm and a network")
    def assign(self, request, queryset):
        form = AssignForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            count = queryset.approve(
                form.cleaned_data["farm"], form.cleaned_data["network"], user=request.user
            )
            self.message_user(
                request,
                f"{count} node(s) assigned to farm {form.cleaned_data['farm']} on "
                f"{form.cleaned_data['network']}; they boot at their next retry.",
                messages.SUCCESS,
            )
            return None
        return TemplateResponse(
            request,
            "admin/provisioning/action_form.html",
            {
                **self.admin_site.each_context(request),
                "title": "Assign a farm and a network",
                "intro": "Waiting nodes ask again every "
                f"{settings.ZOSBOOT_DISCOVERY_RETRY_SECONDS} seconds and boot once assigned.",
                "form": form,
                "queryset": queryset,
                "action": "assign",
                "opts": self.model._meta,
            },
        )

    @admin.action(description="Enable: let these nodes boot")
    def enable(self, request, queryset) -> None:
        count = queryset.set_enabled(True, user=request.user)
        self.message_user(request, f"{count} node(s) enabled.", messages.SUCCESS)

    @admin.action(description="Disable: stop these nodes from booting")
    def disable(self, request, queryset) -> None:
        count = queryset.set_enabled(False, user=request.user)
        self.message_user(request, f"{count} node(s) disabled.", messages.SUCCESS)


@admin.register(FleetChange)
class FleetChangeAdmin(ReadOnlyAdmin):
    list_display = ("changed_at", "farmer_id", "mac", "what", "changed_by", "changed_via")
    search_fields = ("=mac", "=farmer_id", "what", "changed_via")
    date_hierarchy = "changed_at"
    list_select_related = ("changed_by",)

    def get_search_results(self, request, queryset, search_term):
        return super().get_search_results(request, queryset, canonical_mac(search_term))
