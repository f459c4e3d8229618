"""Networks in the admin: what each boots per architecture, since when and by whom; switching
and rolling back go through the audited path (and four eyes where required), each shown first
with the machines it reaches."""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, OuterRef, Subquery
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html

from .. import kernel_periods, switching
from ..errors import reason
from ..models import Arch, KernelChange, LatestBoot, Network, PendingSwitch
from ..models.networks import POINTER_FIELDS
from . import confirm
from .history import running_link
from .readonly import SwitchingTrailAdmin


def machines(**match) -> Subquery:
    """How many machines' latest boot matches (LatestBoot has indexes for both uses)."""
    rows = LatestBoot.objects.filter(**match).order_by().values(next(iter(match)))
    return Subquery(rows.annotate(n=Count("*")).values("n")[:1])


def now_booting(networks: list[Network]) -> None:
    """Give each network `booting`: {arch: the Period of what it boots now, or None}."""
    periods = kernel_periods.periods_of(networks)
    for network in networks:
        network.booting = {
            arch: kernel_periods.current(periods[network.pk, arch], network.kernel_for(arch))
            for arch in Arch
        }


def boots(network: Network, arch: str):
    """What a network's `arch` machines boot now: the kernel (and the link it comes through),
    since when and by whom."""
    kernel = network.kernel_for(arch)
    if kernel is None:
        return "-"
    if not hasattr(network, "booting"):
        now_booting([network])
    link = network.pointer(arch)[1]
    what = format_html(
        '<a href="{}">{}</a>', reverse("admin:provisioning_kernel_change", args=[kernel.pk]),
        kernel.name,
    )  # fmt: skip
    if link is not None:
        url = reverse("admin:provisioning_branchlink_change", args=[link.pk])
        what = format_html('{}<br><small>through link <a href="{}">{}</a></small>', what, url,
                           link.name)  # fmt: skip
    period = network.booting[arch]
    if period is None or period.start is None:
        return format_html("{}<br><small>since before the recorded history</small>", what)
    since = date_format(timezone.localtime(period.start), "SHORT_DATETIME_FORMAT")
    who = f" by {period.by}" if period.by else ""
    if period.approved_by:
        who = f"{who}, approved by {period.approved_by}"
    return format_html("{}<br><small>since {}{}</small>", what, since, who)


class NetworkChangeList(ChangeList):
    """The networks of a page, each with what it boots now and since when (a few queries for
    the page, whatever the number of networks and switches)."""

    def get_results(self, request):
        super().get_results(request)
        self.result_list = list(self.result_list)
        now_booting(self.result_list)


class KernelChangeInline(admin.TabularInline):
    model = KernelChange
    fk_name = "network"
    fields = (
        "changed_at", "arch", "previous_label", "new_label", "changed_by", "changed_via",
        "approved_by", "note",
    )  # fmt: skip
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = False
    ordering = ("-changed_at", "-pk")


@admin.register(Network)
class NetworkAdmin(admin.ModelAdmin):
    list_display = ("slug", "name", "active", "amd64", "arm64", "machines")
    list_filter = ("active",)
    search_fields = ("slug", "name", "kernel__name", "kernel_arm64__name")
    list_select_related = Network.POINTERS_JOINED
    autocomplete_fields = ("kernel", "link", "kernel_arm64", "link_arm64")
    fieldsets = (
        (None, {"fields": ("slug", "name", "active", "extra_args", "machines")}),
        ("amd64 machines", {"fields": ("amd64", "kernel", "link")}),
        ("arm64 machines", {"fields": ("arm64", "kernel_arm64", "link_arm64")}),
    )
    inlines = [KernelChangeInline]
    actions = ["rollback_kernel", "rollback_arm64_kernel"]

    def get_fieldsets(self, request, obj=None):
        if obj is None:  # nothing booted, no machines to count on the add page
            first = ("slug", "name", "active", "extra_args")
            return (
                (None, {"fields": first}),
                ("amd64 machines", {"fields": POINTER_FIELDS[Arch.AMD64]}),
                ("arm64 machines", {"fields": POINTER_FIELDS[Arch.ARM64]}),
            )
        return self.fieldsets

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_machines=machines(network=OuterRef("pk")))

    def get_changelist(self, request, **kwargs):
        return NetworkChangeList

    def get_readonly_fields(self, request, obj=None):
        # The slug is the URL nodes use; renaming it would strand them.
        return ("slug", "machines", "amd64", "arm64") if obj else ()

    @admin.display(description="machines (latest boot)")
    def machines(self, network: Network):
        return running_link(network._machines, network__id__exact=network.pk)

    @admin.display(description="amd64 machines boot")
    def amd64(self, network: Network):
        return boots(network, Arch.AMD64)

    @admin.display(description="arm64 machines boot")
    def arm64(self, network: Network):
        return boots(network, Arch.ARM64)

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        if request.method == "POST" and object_id is not None and not confirm.confirmed(request):
            page = self._confirm_switch(request, object_id)
            if page is not None:
                return page
        return super().changeform_view(request, object_id, form_url, extra_context)

    def _confirm_switch(self, request, object_id):
        """The confirmation page when the form switches what the network boots (None: it
        does not, or the form has errors the form itself shows)."""
        network = self.get_object(request, unquote(object_id))
        if network is None or not self.has_change_permission(request, network):
            return None
        saved = Network.objects.select_related(*Network.POINTERS_JOINED).get(pk=network.pk)
        form = self.get_form(request, network, change=True)(request.POST, instance=network)
        if not form.is_valid():
            return None
        switches = [
            confirm.describe(saved, arch, *form.instance.pointer(arch))
            for arch in Arch
            if set(POINTER_FIELDS[arch]) & set(form.changed_data)
            and form.instance.pointer(arch) != saved.pointer(arch)
        ]
        if not switches:
            return None
        return confirm.page(
            request, self, title=f"Switch network {saved.slug}?", switches=switches,
            keep=confirm.form_fields(request), button="Switch",
        )  # fmt: skip

    def save_model(self, request, obj: Network, form, change: bool) -> None:
        # Save everything else, then switch each architecture's pointer that changed through
        # the audited path.
        wanted = {arch: obj.pointer(arch) for arch in Arch}
        saved = Network.objects.get(pk=obj.pk) if change else None
        for fields in POINTER_FIELDS.values():
            for field in fields:
                setattr(obj, field, getattr(saved, field) if saved is not None else None)
        super().save_model(request, obj, form, change)
        note = "changed in admin" if change else "network created"
        for arch, (kernel, link) in wanted.items():
            if change and not set(POINTER_FIELDS[arch]) & set(form.changed_data):
                continue
            if link is None and kernel is None and not change:
                continue
            result = switching.point(obj, kernel, link, arch=arch, user=request.user, note=note)
            if isinstance(result, PendingSwitch):
                what = f"link {link.name}" if link else kernel.name if kernel else "no kernel"
                self.message_user(request, switching.said(obj, result, what), messages.WARNING)

    def _rollback(self, request, queryset, arch: str):
        machines = "" if arch == Arch.AMD64 else f" on {arch} machines"
        if not confirm.confirmed(request):
            switches = []
            for network in queryset.select_related(*Network.POINTERS_JOINED):
                try:
                    step = network.rollback_step(arch)
                except KernelChange.NoPrevious as exc:
                    self.message_user(request, str(exc), messages.ERROR)
                else:
                    switches.append(confirm.describe(network, arch, *step.pointer))
            if not switches:
                return None
            return confirm.page(
                request, self, title=f"Roll back{machines}?", switches=switches,
                keep=confirm.action_fields(request), button="Roll back",
            )  # fmt: skip
        for network in queryset:
            try:
                change = switching.rollback(network, user=request.user, arch=arch)
            except (KernelChange.NoPrevious, ValidationError) as exc:
                text = reason(exc)
                self.message_user(request, text, messages.ERROR)
            else:
                if isinstance(change, PendingSwitch):
                    what = f"{change.target_label}{machines}"
                    text = switching.said(network, change, what)
                    self.message_user(request, text, messages.WARNING)
                    continue
                self.message_user(
                    request,
                    f"Network {network.slug} now boots {change.new_label}{machines} again "
                    f"(was {change.previous_label}).",
                    messages.SUCCESS,
                )
        return None

    @admin.action(description="Roll back to the previous kernel")
    def rollback_kernel(self, request, queryset):
        return self._rollback(request, queryset, Arch.AMD64)

    @admin.action(description="Roll back to the previous arm64 kernel")
    def rollback_arm64_kernel(self, request, queryset):
        return self._rollback(request, queryset, Arch.ARM64)


@admin.register(KernelChange)
class KernelChangeAdmin(SwitchingTrailAdmin):
    list_display = ("changed_at", "where", "switch", "who", "note")
    list_select_related = ("network", "changed_by", "approved_by")
    actions = ["restore"]
    list_filter = ("network", "arch", "changed_at")
    search_fields = ("previous_name", "new_name", "previous_link_name", "new_link_name",
                     "changed_via", "note")  # fmt: skip
    date_hierarchy = "changed_at"

    @admin.display(description="network", ordering="network__slug")
    def where(self, change: KernelChange) -> str:
        slug = change.network.slug
        return slug if change.arch == Arch.AMD64 else f"{slug} ({change.arch})"

    @admin.display(description="from → to")
    def switch(self, change: KernelChange):
        return format_html("{}<br>→ {}", change.previous_label, change.new_label)

    @admin.display(description="by")
    def who(self, change: KernelChange):
        by = kernel_periods.actor(change) or "-"
        if change.changed_by_id and change.changed_via:
            by = f"{by} ({change.changed_via})"
        if change.approved_by_id:
            return format_html(
                "{}<br><small>approved by {}</small>", by, change.approved_by.get_username()
            )
        return by

    @admin.action(description="Roll back: boot again what this switch set")
    def restore(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "Pick exactly one switch to go back to.", messages.ERROR)
            return None
        change = queryset.select_related("network", "new", "new_link").get()
        network = Network.objects.select_related(*Network.POINTERS_JOINED).get(pk=change.network_id)
        try:
            if not confirm.confirmed(request):
                step = network.restore_step(change)
                return confirm.page(
                    request, self, title=f"Roll back network {network.slug}?",
                    switches=[confirm.describe(network, step.arch, *step.pointer)],
                    keep=confirm.action_fields(request), button="Roll back",
                )  # fmt: skip
            done = switching.restore(network, change, user=request.user)
        except KernelChange.NoPrevious as exc:
            self.message_user(request, f"Cannot roll back: {exc}.", messages.ERROR)
            return None
        except ValidationError as exc:
            self.message_user(request, f"Cannot roll back: {exc.messages[0]}.", messages.ERROR)
            return None
        if isinstance(done, PendingSwitch):
            text = switching.said(network, done, change.new_label)
            self.message_user(request, text, messages.WARNING)
        elif done is None:
            self.message_user(request, f"Network {network.slug} boots {change.new_label} already.")
        else:
            self.message_user(
                request, f"Network {network.slug} now boots {change.new_label} again.",
                messages.SUCCESS,
            )  # fmt: skip
        return None


@admin.register(PendingSwitch)
class PendingSwitchAdmin(SwitchingTrailAdmin):
    """Four eyes: switches asked for on protected networks, approved or rejected here by a
    second staff user (the one who asked may withdraw, not approve)."""

    list_display = (
        "changed_at", "network", "arch", "target_label", "asked_by_label", "note", "state",
        "decided",
    )  # fmt: skip
    list_filter = ("state", "network")
    list_select_related = ("network", "kernel", "link__kernel", "changed_by", "decided_by")
    actions = ["approve", "reject"]

    @admin.display(description="to boot")
    def target_label(self, pending: PendingSwitch) -> str:
        return pending.target_label

    @admin.display(description="asked by")
    def asked_by_label(self, pending: PendingSwitch) -> str:
        return pending.asked_by_label

    @admin.display(description="decided", ordering="decided_at")
    def decided(self, pending: PendingSwitch):
        if pending.decided_at is None:
            return "-"
        by = pending.decided_by.get_username() if pending.decided_by_id else "-"
        when = date_format(timezone.localtime(pending.decided_at), "SHORT_DATETIME_FORMAT")
        return format_html("{}<br><small>{}</small>", by, when)

    @admin.action(description="Approve: make these switches")
    def approve(self, request, queryset):
        if not confirm.confirmed(request):
            waiting = list(
                queryset.filter(state=PendingSwitch.State.PENDING).select_related(
                    "kernel", "link__kernel"
                )
            )
            # Who asked is told at once that a second operator must approve.
            own = [pending for pending in waiting if pending.changed_by_id == request.user.pk]
            for pending in own:
                text = "you asked for this switch: a second operator must approve it"
                self.message_user(request, f"Network {pending}: {text}", messages.ERROR)
            waiting = [pending for pending in waiting if pending not in own]
            if waiting:
                ids = [pending.network_id for pending in waiting]
                networks = Network.objects.select_related(*Network.POINTERS_JOINED).in_bulk(ids)
                switches = [
                    confirm.describe(networks[p.network_id], p.arch, p.kernel, p.link,
                                     approving=True)
                    for p in waiting
                ]  # fmt: skip
                return confirm.page(
                    request, self, title="Approve these switches?", switches=switches,
                    keep=confirm.action_fields(request), button="Approve", approving=True,
                )  # fmt: skip
            if own:
                return None
        # Confirmed, or nothing left to confirm: each selected switch says what became of it.
        for pending in queryset.select_related("network"):
            try:
                pending.approve(request.user)
            except (PermissionDenied, ValidationError) as exc:
                text = reason(exc)
                self.message_user(request, f"Network {pending}: {text}", messages.ERROR)
            else:
                self.message_user(
                    request,
                    f"Network {pending.network.slug} now boots {pending.target_label} (asked by "
                    f"{pending.asked_by_label}, approved by {request.user.get_username()}).",
                    messages.SUCCESS,
                )
        return None

    @admin.action(description="Reject: leave the networks as they are")
    def reject(self, request, queryset) -> None:
        for pending in queryset.select_related("network"):
            try:
                pending.reject(request.user)
            except PermissionDenied as exc:
                self.message_user(request, f"Network {pending}: {exc}", messages.ERROR)
            else:
                self.message_user(request, f"Network {pending}: rejected.", messages.SUCCESS)
