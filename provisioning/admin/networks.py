"""Networks and kernels in the admin: switching and rolling back go through the audited path."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.template.response import TemplateResponse
from django.utils.html import format_html_join

from ..models import Kernel, KernelChange, Network
from .readonly import ReadOnlyAdmin


class KernelChangeInline(admin.TabularInline):
    model = KernelChange
    fk_name = "network"
    fields = ("changed_at", "previous_label", "new_label", "changed_by", "changed_via", "note")
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = False
    ordering = ("-changed_at", "-pk")


@admin.register(Network)
class NetworkAdmin(admin.ModelAdmin):
    list_display = ("slug", "name", "active", "kernel", "link", "kernel_since")
    list_filter = ("active",)
    search_fields = ("slug", "name", "kernel__name")
    autocomplete_fields = ("kernel", "link")
    inlines = [KernelChangeInline]
    actions = ["rollback_kernel"]

    @admin.display(description="boots it since")
    def kernel_since(self, network: Network):
        return network.kernel_since()

    def get_readonly_fields(self, request, obj=None):
        # The slug is the URL nodes use; renaming it would strand them.
        return ("slug",) if obj else ()

    def save_model(self, request, obj: Network, form, change: bool) -> None:
        new_kernel, new_link = obj.kernel, obj.link
        if change and {"kernel", "link"} & set(form.changed_data):
            # Save everything else, then switch through the audited path.
            saved = Network.objects.get(pk=obj.pk)
            obj.kernel, obj.link = saved.kernel, saved.link
            super().save_model(request, obj, form, change)
            if new_link is not None:
                obj.follow_link(new_link, user=request.user, note="changed in admin")
            else:
                obj.switch_kernel(new_kernel, user=request.user, note="changed in admin")
            return
        obj.kernel, obj.link = None, None
        super().save_model(request, obj, form, change)
        if new_link is not None:
            obj.follow_link(new_link, user=request.user, note="network created")
        elif new_kernel is not None:
            obj.switch_kernel(new_kernel, user=request.user, note="network created")

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
                    f"{network.slug} now boots {change.new_label} again "
                    f"(was {change.previous_label}).",
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
class KernelChangeAdmin(ReadOnlyAdmin):
    list_display = (
        "changed_at", "network", "previous_label", "new_label", "changed_by", "changed_via",
        "note",
    )  # fmt: skip
    list_filter = ("network", "changed_at")
    search_fields = ("previous_name", "new_name", "previous_link_name", "new_link_name",
                     "changed_via", "note")  # fmt: skip
    date_hierarchy = "changed_at"
