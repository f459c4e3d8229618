from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.db.models import Count, Q
from django.template.response import TemplateResponse
from django.utils.html import format_html_join
from django.utils.text import Truncator

from .models import BootEvent, Farm, Kernel, KernelChange, Network, Node


class KernelChangeInline(admin.TabularInline):
    model = KernelChange
    fk_name = "network"
    fields = ("changed_at", "previous_name", "new_name", "changed_by", "note")
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = False
    ordering = ("-changed_at", "-pk")


@admin.register(Network)
class NetworkAdmin(admin.ModelAdmin):
    list_display = ("slug", "name", "active", "kernel", "kernel_since")
    list_filter = ("active",)
    search_fields = ("slug", "name", "kernel__name")
    autocomplete_fields = ("kernel",)
    inlines = [KernelChangeInline]
    actions = ["rollback_kernel"]

    @admin.display(description="boots it since")
    def kernel_since(self, network: Network):
        return network.kernel_since()

    def get_readonly_fields(self, request, obj=None):
        # The slug is the URL nodes use; renaming it would strand them.
        return ("slug",) if obj else ()

    def save_model(self, request, obj: Network, form, change: bool) -> None:
        new_kernel = obj.kernel
        if change and "kernel" in form.changed_data:
            # Save everything else, then switch through the audited path.
            obj.kernel = Network.objects.get(pk=obj.pk).kernel
            super().save_model(request, obj, form, change)
            obj.switch_kernel(new_kernel, user=request.user, note="changed in admin")
            return
        super().save_model(request, obj, form, change)
        if not change and new_kernel is not None:
            KernelChange.objects.create(
                network=obj,
                new=new_kernel,
                new_name=new_kernel.name,
                changed_by=request.user,
                note="network created",
            )

    @admin.action(description="Roll back to the previous kernel")
    def rollback_kernel(self, request, queryset) -> None:
        for network in queryset:
            try:
                change = network.rollback_kernel(user=request.user)
            except KernelChange.NoPrevious as exc:
                self.message_user(request, str(exc), messages.ERROR)
            else:
                self.message_user(
                    request,
                    f"{network.slug} now boots {change.new_name} again "
                    f"(was {change.previous_name}).",
                    messages.SUCCESS,
                )


class PromoteForm(forms.Form):
    networks = forms.ModelMultipleChoiceField(
        queryset=Network.objects.all(), widget=forms.CheckboxSelectMultiple
    )


@admin.register(Kernel)
class KernelAdmin(admin.ModelAdmin):
    list_display = ("name", "size_mb", "short_sha256", "uploaded_at", "booted_by")
    search_fields = ("name", "sha256", "notes")
    list_filter = ("uploaded_at",)
    readonly_fields = ("sha256", "size", "uploaded_at", "booted_by")
    fields = ("name", "file", "notes", "sha256", "size", "uploaded_at", "booted_by")
    actions = ["promote"]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("networks")

    @admin.display(description="size (MB)", ordering="size")
    def size_mb(self, kernel: Kernel) -> str:
        return f"{kernel.size / 1_000_000:.1f}"

    @admin.display(description="sha256")
    def short_sha256(self, kernel: Kernel) -> str:
        return kernel.sha256[:16]

    @admin.display(description="networks booting it")
    def booted_by(self, kernel: Kernel):
        networks = list(kernel.networks.all())
        if not networks:
            return "-"
        return format_html_join(", ", "{}", ((n.slug,) for n in networks))

    @admin.action(description="Boot this kernel on networks...")
    def promote(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "Pick exactly one kernel to promote.", messages.ERROR)
            return None
        kernel = queryset.get()
        form = PromoteForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            for network in form.cleaned_data["networks"]:
                network.switch_kernel(kernel, user=request.user, note="promoted in admin")
            slugs = ", ".join(n.slug for n in form.cleaned_data["networks"])
            self.message_user(request, f"{slugs} now boot {kernel.name}.", messages.SUCCESS)
            return None
        return TemplateResponse(
            request,
            "admin/provisioning/action_form.html",
            {
                **self.admin_site.each_context(request),
                "title": f"Boot {kernel.name} on networks",
                "intro": "Nodes of the networks you pick boot this kernel from their next boot.",
                "form": form,
                "queryset": queryset,
                "action": "promote",
                "opts": self.model._meta,
            },
        )


@admin.register(KernelChange)
class KernelChangeAdmin(admin.ModelAdmin):
    list_display = ("changed_at", "network", "previous_name", "new_name", "changed_by", "note")
    list_filter = ("network", "changed_at")
    search_fields = ("previous_name", "new_name", "note")
    date_hierarchy = "changed_at"

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


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
    list_select_related = ("farm", "network__kernel", "kernel_override")
    autocomplete_fields = ("farm", "kernel_override")
    readonly_fields = ("first_seen", "last_seen", "last_ip", "boot_count", "created_at")
    actions = ["assign", "enable", "disable"]

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
            count = queryset.update(
                farm=form.cleaned_data["farm"], network=form.cleaned_data["network"], enabled=True
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
                "intro": "Waiting nodes retry every few seconds and boot once assigned.",
                "form": form,
                "queryset": queryset,
                "action": "assign",
                "opts": self.model._meta,
            },
        )

    @admin.action(description="Enable: let these nodes boot")
    def enable(self, request, queryset) -> None:
        count = queryset.update(enabled=True)
        self.message_user(request, f"{count} node(s) enabled.", messages.SUCCESS)

    @admin.action(description="Disable: stop these nodes from booting")
    def disable(self, request, queryset) -> None:
        count = queryset.update(enabled=False)
        self.message_user(request, f"{count} node(s) disabled.", messages.SUCCESS)


@admin.register(BootEvent)
class BootEventAdmin(admin.ModelAdmin):
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

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


admin.site.site_header = "zosboot"
admin.site.site_title = "zosboot admin"
admin.site.index_title = "Boot service administration"
