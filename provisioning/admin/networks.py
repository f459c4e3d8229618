"""Networks and kernels in the admin: switching and rolling back go through the audited path."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.db.models import Count, OuterRef, Subquery
from django.template.response import TemplateResponse
from django.utils.html import format_html_join

from ..models import Kernel, KernelChange, LatestBoot, Network
from .history import running_link
from .kernel_upload import KernelForm
from .readonly import ReadOnlyAdmin


def _machines(**match) -> Subquery:
    """How many machines' latest boot matches (LatestBoot has indexes for both uses)."""
    rows = LatestBoot.objects.filter(**match).order_by().values(next(iter(match)))
    return Subquery(rows.annotate(n=Count("*")).values("n")[:1])


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
    list_display = ("slug", "name", "active", "kernel", "link", "kernel_since", "machines")
    list_filter = ("active",)
    search_fields = ("slug", "name", "kernel__name")
    autocomplete_fields = ("kernel", "link")
    inlines = [KernelChangeInline]
    actions = ["rollback_kernel"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_machines=_machines(network=OuterRef("pk")))

    def get_readonly_fields(self, request, obj=None):
        # The slug is the URL nodes use; renaming it would strand them.
        return ("slug", "machines") if obj else ()

    @admin.display(description="machines (latest boot)")
    def machines(self, network: Network):
        return running_link(network._machines, network__id__exact=network.pk)

    @admin.display(description="boots it since")
    def kernel_since(self, network: Network):
        return network.kernel_since()

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
    list_display = ("name", "size_mb", "short_sha256", "uploaded_at", "booted_by", "running")
    search_fields = ("name", "sha256", "notes")
    list_filter = ("uploaded_at",)
    readonly_fields = ("sha256", "size", "uploaded_at", "booted_by", "running")
    fields = ("name", "file", "notes", "sha256", "size", "uploaded_at", "booted_by", "running")
    form = KernelForm
    actions = ["promote"]

    def get_fields(self, request, obj=None):
        # "kept" carries an upload kept from a failed try of the add form.
        return self.fields + (("kept",) if obj is None else ())

    def save_model(self, request, obj, form, change: bool) -> None:
        super().save_model(request, obj, form, change)
        form.discard_kept()

    def get_queryset(self, request):
        running = _machines(kernel_name=OuterRef("name"))
        return super().get_queryset(request).prefetch_related("networks").annotate(_running=running)

    @admin.display(description="running on")
    def running(self, kernel: Kernel):
        return running_link(getattr(kernel, "_running", 0), kernel_name=kernel.name)

    def get_deleted_objects(self, objs, request):
        confirming = request.method == "POST" and request.POST.get("post")
        for kernel in [] if confirming else objs:
            targets = Network.objects.rolling_back_to(kernel)
            if targets:
                slugs = ", ".join(n.slug for n in targets)
                self.message_user(
                    request,
                    f"{kernel.name} is what {slugs} would roll back to: after deleting it, "
                    "a rollback of that network has nothing to go back to.",
                    messages.WARNING,
                )
        return super().get_deleted_objects(objs, request)

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
            chosen = [n.slug for n in form.cleaned_data["networks"]]
            who = f"Network {chosen[0]} now boots" if len(chosen) == 1 else (
                f"Networks {', '.join(chosen)} now boot"
            )  # fmt: skip
            self.message_user(request, f"{who} {kernel.name}.", messages.SUCCESS)
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
        "changed_at", "network", "previous_label", "new_label", "changed_by",
        "changed_via", "note",
    )  # fmt: skip
    actions = ["restore"]

    def has_change_permission(self, request, obj=None) -> bool:
        # The rows stay read-only; the action switches the network, and needs that right.
        return obj is None and request.user.has_perm("provisioning.change_network")

    @admin.action(description="Roll back: boot again what this switch set")
    def restore(self, request, queryset) -> None:
        if queryset.count() != 1:
            self.message_user(request, "Pick exactly one switch to go back to.", messages.ERROR)
            return
        change = queryset.select_related("network", "new", "new_link").get()
        try:
            done = change.network.restore(change, user=request.user)
        except KernelChange.NoPrevious as exc:
            self.message_user(request, f"Cannot roll back: {exc}.", messages.ERROR)
            return
        if done is None:
            self.message_user(request, f"{change.network} boots {change.new_label} already.")
        else:
            self.message_user(
                request, f"{change.network} now boots {change.new_label} again.", messages.SUCCESS
            )

    list_filter = ("network", "changed_at")
    search_fields = ("previous_name", "new_name", "previous_link_name", "new_link_name",
                     "changed_via", "note")  # fmt: skip
    date_hierarchy = "changed_at"
