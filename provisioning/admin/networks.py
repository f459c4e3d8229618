"""Networks and kernels in the admin: switching and rolling back go through the audited path."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, OuterRef, Subquery
from django.template.response import TemplateResponse
from django.utils.html import format_html_join

from .. import kernels, signatures, switching
from ..models import Arch, Kernel, KernelChange, LatestBoot, Network, PendingSwitch
from ..models.kernels import KernelRecord
from ..models.networks import POINTER_FIELDS
from .history import running_link
from .kernel_upload import KernelChangeForm, KernelForm
from .readonly import ReadOnlyAdmin, SwitchingTrailAdmin


def _machines(**match) -> Subquery:
    """How many machines' latest boot matches (LatestBoot has indexes for both uses)."""
    rows = LatestBoot.objects.filter(**match).order_by().values(next(iter(match)))
    return Subquery(rows.annotate(n=Count("*")).values("n")[:1])


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
    list_display = (
        "slug", "name", "active", "kernel", "link", "arm64", "kernel_since", "machines",
    )  # fmt: skip
    list_filter = ("active",)
    search_fields = ("slug", "name", "kernel__name", "kernel_arm64__name")
    autocomplete_fields = ("kernel", "link", "kernel_arm64", "link_arm64")
    fieldsets = (
        (None, {"fields": ("slug", "name", "active", "extra_args", "machines")}),
        ("amd64 machines", {"fields": ("kernel", "link")}),
        ("arm64 machines", {"fields": ("kernel_arm64", "link_arm64")}),
    )
    inlines = [KernelChangeInline]
    actions = ["rollback_kernel", "rollback_arm64_kernel"]

    def get_fieldsets(self, request, obj=None):
        if obj is None:  # no machines to count on the add page
            first = ("slug", "name", "active", "extra_args")
            return ((None, {"fields": first}), *self.fieldsets[1:])
        return self.fieldsets

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

    @admin.display(description="arm64 kernel")
    def arm64(self, network: Network) -> str:
        kernel, link = network.pointer(Arch.ARM64)
        return f"link {link.name}" if link is not None else kernel.name if kernel else "-"

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

    def _rollback(self, request, queryset, arch: str) -> None:
        machines = "" if arch == Arch.AMD64 else f" on {arch} machines"
        for network in queryset:
            try:
                change = switching.rollback(network, user=request.user, arch=arch)
            except (KernelChange.NoPrevious, ValidationError) as exc:
                text = exc.messages[0] if isinstance(exc, ValidationError) else str(exc)
                self.message_user(request, text, messages.ERROR)
            else:
                if isinstance(change, PendingSwitch):
                    what = f"{change.target_label}{machines}"
                    text = switching.said(network, change, what)
                    self.message_user(request, text, messages.WARNING)
                    continue
                self.message_user(
                    request,
                    f"{network.slug} now boots {change.new_label}{machines} again "
                    f"(was {change.previous_label}).",
                    messages.SUCCESS,
                )

    @admin.action(description="Roll back to the previous kernel")
    def rollback_kernel(self, request, queryset) -> None:
        self._rollback(request, queryset, Arch.AMD64)

    @admin.action(description="Roll back to the previous arm64 kernel")
    def rollback_arm64_kernel(self, request, queryset) -> None:
        self._rollback(request, queryset, Arch.ARM64)


class PromoteForm(forms.Form):
    networks = forms.ModelMultipleChoiceField(
        queryset=Network.objects.all(), widget=forms.CheckboxSelectMultiple
    )


@admin.register(Kernel)
class KernelAdmin(admin.ModelAdmin):
    list_display = (
        "name", "arch", "size_mb", "short_sha256", "signature_label", "uploaded_at", "booted_by",
        "running",
    )  # fmt: skip
    search_fields = ("name", "sha256", "notes", "signer")
    list_filter = ("arch", "uploaded_at")
    # A kernel is immutable once registered: what it is shows, only its notes (and a release
    # signature for the same bytes) can be given.
    readonly_fields = (
        "name", "arch", "content_address", "sha256", "size", "signature_label", "uploaded_at",
        "booted_by", "running",
    )  # fmt: skip
    form = KernelForm
    actions = ["promote"]

    def get_fields(self, request, obj=None):
        if obj is None:
            # "kept" carries an upload kept from a failed try of the add form.
            return ("name", "arch", "file", "notes", "signature_file", "kept")
        return (*self.readonly_fields, "notes", "signature_file")

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else self.readonly_fields

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is not None:
            kwargs["form"] = KernelChangeForm
            kwargs["fields"] = ("notes", "signature_file")
            return super().get_form(request, obj, change, **kwargs)
        form = super().get_form(request, obj, change, **kwargs)
        return type(form.__name__, (form,), {"user": request.user})

    @admin.display(description="release signature")
    def signature_label(self, kernel: Kernel) -> str:
        return kernel.signature_label

    @admin.display(description="content address")
    def content_address(self, kernel: Kernel) -> str:
        return kernel.content_path

    def save_model(self, request, obj, form, change: bool) -> None:
        if not change:
            # Registered when the form was validated (KernelForm._post_clean).
            form.discard_kept()
            return
        super().save_model(request, obj, form, change)
        signed = form.cleaned_data.get("signed")
        if signed and not signatures.offer(obj, signed, user=request.user, via="admin"):
            self.message_user(
                request,
                f"{obj.name} keeps the release signature it has ({obj.signature_label}): it "
                "verifies, and a signature that verifies is never replaced.",
                messages.WARNING,
            )

    def delete_model(self, request, obj) -> None:
        kernels.remove(obj, user=request.user, via="admin")

    def delete_queryset(self, request, queryset) -> None:
        for kernel in queryset:
            kernels.remove(kernel, user=request.user, via="admin")

    def get_queryset(self, request):
        running = _machines(kernel_name=OuterRef("name"))
        networks = ("networks", "networks_arm64")
        return super().get_queryset(request).prefetch_related(*networks).annotate(_running=running)

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
        networks = [*kernel.networks.all(), *kernel.networks_arm64.all()]
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
        machines = "" if kernel.arch == Arch.AMD64 else f" on {kernel.arch} machines"
        if form.is_valid():
            chosen = []
            try:
                for network in form.cleaned_data["networks"]:
                    result = switching.point(
                        network, kernel, arch=kernel.arch, user=request.user,
                        note="promoted in admin",
                    )  # fmt: skip
                    if isinstance(result, PendingSwitch):
                        text = switching.said(network, result, kernel.name)
                        self.message_user(request, text, messages.WARNING)
                    else:
                        chosen.append(network.slug)
            except ValidationError as exc:
                self.message_user(request, exc.messages[0], messages.ERROR)
                return None
            if chosen:
                who = f"Network {chosen[0]} now boots" if len(chosen) == 1 else (
                    f"Networks {', '.join(chosen)} now boot"
                )  # fmt: skip
                self.message_user(request, f"{who} {kernel.name}{machines}.", messages.SUCCESS)
            return None
        return TemplateResponse(
            request,
            "admin/provisioning/action_form.html",
            {
                **self.admin_site.each_context(request),
                "title": f"Boot {kernel.name} on networks",
                "intro": f"Nodes of the networks you pick boot this kernel{machines} from "
                "their next boot.",
                "form": form,
                "queryset": queryset,
                "action": "promote",
                "opts": self.model._meta,
            },
        )


@admin.register(KernelChange)
class KernelChangeAdmin(SwitchingTrailAdmin):
    list_display = (
        "changed_at", "network", "arch", "previous_label", "new_label", "changed_by",
        "changed_via", "approved_by", "note",
    )  # fmt: skip
    actions = ["restore"]

    @admin.action(description="Roll back: boot again what this switch set")
    def restore(self, request, queryset) -> None:
        if queryset.count() != 1:
            self.message_user(request, "Pick exactly one switch to go back to.", messages.ERROR)
            return
        change = queryset.select_related("network", "new", "new_link").get()
        try:
            done = switching.restore(change.network, change, user=request.user)
        except KernelChange.NoPrevious as exc:
            self.message_user(request, f"Cannot roll back: {exc}.", messages.ERROR)
            return
        except ValidationError as exc:
            self.message_user(request, f"Cannot roll back: {exc.messages[0]}.", messages.ERROR)
            return
        if isinstance(done, PendingSwitch):
            text = switching.said(change.network, done, change.new_label)
            self.message_user(request, text, messages.WARNING)
        elif done is None:
            self.message_user(request, f"{change.network} boots {change.new_label} already.")
        else:
            self.message_user(
                request, f"{change.network} now boots {change.new_label} again.", messages.SUCCESS
            )

    list_filter = ("network", "arch", "changed_at")
    search_fields = ("previous_name", "new_name", "previous_link_name", "new_link_name",
                     "changed_via", "note")  # fmt: skip
    date_hierarchy = "changed_at"


@admin.register(PendingSwitch)
class PendingSwitchAdmin(SwitchingTrailAdmin):
    """Four eyes: switches asked for on protected networks, approved or rejected here by a
    second staff user (the one who asked may withdraw, not approve)."""

    list_display = (
        "changed_at", "network", "arch", "target_label", "asked_by_label", "note", "state",
        "decided_by", "decided_at",
    )  # fmt: skip
    list_filter = ("state", "network")
    list_select_related = ("network", "kernel", "link", "changed_by", "decided_by")
    actions = ["approve", "reject"]

    @admin.display(description="to boot")
    def target_label(self, pending: PendingSwitch) -> str:
        return pending.target_label

    @admin.display(description="asked by")
    def asked_by_label(self, pending: PendingSwitch) -> str:
        return pending.asked_by_label

    @admin.action(description="Approve: make these switches")
    def approve(self, request, queryset) -> None:
        for pending in queryset.select_related("network"):
            try:
                pending.approve(request.user)
            except (PermissionDenied, ValidationError) as exc:
                text = exc.messages[0] if isinstance(exc, ValidationError) else str(exc)
                self.message_user(request, f"{pending}: {text}", messages.ERROR)
            else:
                self.message_user(
                    request,
                    f"{pending.network} now boots {pending.target_label} (asked by "
                    f"{pending.asked_by_label}, approved by {request.user.get_username()}).",
                    messages.SUCCESS,
                )

    @admin.action(description="Reject: leave the networks as they are")
    def reject(self, request, queryset) -> None:
        for pending in queryset.select_related("network"):
            try:
                pending.reject(request.user)
            except PermissionDenied as exc:
                self.message_user(request, f"{pending}: {exc}", messages.ERROR)
            else:
                self.message_user(request, f"{pending}: rejected.", messages.SUCCESS)


@admin.register(KernelRecord)
class KernelRecordAdmin(ReadOnlyAdmin):
    list_display = ("at", "kernel_name", "action", "changed_by", "changed_via", "note")
    list_filter = ("action", "at")
    search_fields = ("kernel_name", "sha256", "changed_via", "note")
    date_hierarchy = "at"
