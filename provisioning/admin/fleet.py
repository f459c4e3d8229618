"""Farms and nodes in the admin, and their audit trail."""

from __future__ import annotations

import ipaddress

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.widgets import AutocompleteSelect
from django.core.exceptions import ValidationError
from django.db.models import Count, Q
from django.template.response import TemplateResponse
from django.utils.http import urlencode

from .. import discovery
from ..models import Farm, FleetChange, Network, Node
from ..validators import normalise_mac
from .readonly import ReadOnlyAdmin


class RecordedAdmin(admin.ModelAdmin):
    """Farms and nodes: each save and delete in the admin goes into the fleet's trail."""

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


def canonical_mac(search_term: str) -> str:
    """A MAC in any of the forms nodes use finds the node, as the URLs do."""
    try:
        return normalise_mac(search_term.strip())
    except ValidationError:
        return search_term


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


class FarmIdFilter(admin.SimpleListFilter):
    """Filter by a typed farm ID: a fleet has thousands of farms, too many to list."""

    title = "farm ID"
    parameter_name = "farm"
    template = "admin/provisioning/farm_filter.html"
    lookup = "farm__farmer_id"

    def __init__(self, request, params, model, model_admin):
        super().__init__(request, params, model, model_admin)
        # The other filters and the search stay when a farm ID is typed in.
        self.kept_params = [(k, v) for k, v in request.GET.items() if k != self.parameter_name]
        self.clear_url = "?" + urlencode(self.kept_params)

    def has_output(self) -> bool:
        return True

    def lookups(self, request, model_admin):
        return []

    def queryset(self, request, queryset):
        value = self.value()
        if not value:
            return queryset
        if not value.isdigit():
            raise IncorrectLookupParameters("a farm ID is a number")
        return queryset.filter(**{self.lookup: int(value)})


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
        "mac",
        "status",
        "farm",
        "network",
        "effective_kernel",
        "last_seen",
        "last_ip",
        "boot_count",
    )
    list_filter = (PendingFilter, PendingAddressFilter, "network", FarmIdFilter, "enabled")
    search_fields = ("mac", "last_ip", "farm__name", "=farm__farmer_id", "notes")
    list_select_related = (
        "farm",
        "network__kernel",
        "network__link__kernel",
        "kernel_override",
        "link_override__kernel",
    )
    autocomplete_fields = ("farm", "kernel_override", "link_override")
    readonly_fields = ("first_seen", "last_seen", "last_ip", "boot_count", "created_at")
    actions = ["assign", "enable", "disable"]

    def get_search_results(self, request, queryset, search_term):
        return super().get_search_results(request, queryset, canonical_mac(search_term))

    @admin.display(description="status")
    def status(self, node: Node) -> str:
        if node.is_pending:
            return "waiting for approval"
        return "enabled" if node.enabled else "disabled"

    @admin.display(description="kernel")
    def effective_kernel(self, node: Node) -> str:
        kernel = node.kernel
        return kernel.name if kernel else "-"

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
