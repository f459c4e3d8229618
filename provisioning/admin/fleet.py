"""Farms, nodes and the boot history in the admin."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import Count, Q
from django.template.response import TemplateResponse
from django.utils.text import Truncator

from ..models import BootEvent, Farm, Network, Node
from ..validators import normalise_mac
from .readonly import ReadOnlyAdmin


@admin.register(Farm)
class FarmAdmin(admin.ModelAdmin):
    list_display = ("farmer_id", "name", "active", "node_count")
    list_filter = ("active",)
    search_fields = ("=farmer_id", "name", "notes")

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


class AssignForm(forms.Form):
    farm = forms.ModelChoiceField(queryset=Farm.objects.filter(active=True))
    network = forms.ModelChoiceField(queryset=Network.objects.filter(active=True))


@admin.register(Node)
class NodeAdmin(admin.ModelAdmin):
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
    list_filter = (PendingFilter, "network", "farm", "enabled")
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
        # A MAC in any of the forms nodes use finds the node, as the URLs do.
        try:
            search_term = normalise_mac(search_term.strip())
        except ValidationError:
            pass
        return super().get_search_results(request, queryset, search_term)

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
            count = queryset.approve(form.cleaned_data["farm"], form.cleaned_data["network"])
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
        count = queryset.set_enabled(True)
        self.message_user(request, f"{count} node(s) enabled.", messages.SUCCESS)

    @admin.action(description="Disable: stop these nodes from booting")
    def disable(self, request, queryset) -> None:
        count = queryset.set_enabled(False)
        self.message_user(request, f"{count} node(s) disabled.", messages.SUCCESS)


@admin.register(BootEvent)
class BootEventAdmin(ReadOnlyAdmin):
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
    list_filter = ("kind", "network", "kernel_name", "created_at")
    search_fields = ("mac", "client_ip", "kernel_name", "kernel_sha256", "=farmer_id", "path")
    date_hierarchy = "created_at"
    list_select_related = ("network", "node")
    show_full_result_count = False  # counting a large history on every page view is slow

    @admin.display(description="MAC", ordering="mac")
    def node_mac(self, event: BootEvent) -> str:
        return event.mac or "-"

    @admin.display(description="sha256")
    def short_sha256(self, event: BootEvent) -> str:
        return event.kernel_sha256[:16]

    @admin.display(description="user agent")
    def short_user_agent(self, event: BootEvent) -> str:
        return Truncator(event.user_agent).chars(40)
