"""Kernels in the admin: immutable once registered, each linked to what uses it (networks,
directly or through a branch link; links; nodes; the machines running it); promoting one shows
how many machines each network reaches."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import OuterRef, Prefetch
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode

from .. import kernels, running, signatures, switching
from ..models import Arch, BranchLink, Kernel, Network, PendingSwitch
from ..models.kernels import KernelRecord
from .history import running_link
from .kernel_upload import KernelChangeForm, KernelForm
from .networks import machines
from .readonly import ReadOnlyAdmin


class PromoteForm(forms.Form):
    networks = forms.ModelMultipleChoiceField(
        queryset=Network.objects.all(), widget=forms.CheckboxSelectMultiple
    )

    def __init__(self, *args, arch: str = Arch.AMD64, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        counts = running.machines_booting(arch)
        four_eyes = switching.needs_second_operator

        def choice(network: Network) -> str:
            n = counts.get(network.pk, 0)
            waits = "; waits for a second operator" if four_eyes(network) else ""
            machines = f"{n} machine{'s' if n != 1 else ''}"
            return f"{network.slug}: {machines} run an {arch} kernel there{waits}"

        self.fields["networks"].label_from_instance = choice


def _users(kernel: Kernel) -> list[tuple[Network, str]]:
    """The networks booting `kernel` now, each with how (arm64 machines, through a link);
    from the rows get_queryset prefetched."""
    users = [(network, "") for network in kernel.networks.all()]
    users += [(network, "arm64") for network in kernel.networks_arm64.all()]
    for link in kernel.links.all():
        users += [(network, f"through {link.name}") for network in link.networks.all()]
        users += [(network, f"arm64, through {link.name}") for network in link.networks_arm64.all()]
    return users


@admin.register(Kernel)
class KernelAdmin(admin.ModelAdmin):
    list_display = ("kernel", "arch", "signature_label", "uploaded_at", "booted_by", "running")
    search_fields = ("name", "sha256", "notes", "signer")
    search_help_text = "A name (or a part), a sha256 (or its first characters), notes, a signer."
    list_filter = ("arch", "uploaded_at")
    # A kernel is immutable once registered: what it is shows, only its notes (and a release
    # signature for the same bytes) can be given.
    readonly_fields = (
        "name", "arch", "content_address", "sha256", "size", "signature_label", "uploaded_at",
        "booted_by", "running", "used_by",
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

    def get_queryset(self, request):
        links = BranchLink.objects.prefetch_related("networks", "networks_arm64")
        return (
            super()
            .get_queryset(request)
            .prefetch_related("networks", "networks_arm64", Prefetch("links", queryset=links))
            .annotate(_running=machines(kernel_name=OuterRef("name")))
        )

    @admin.display(description="kernel", ordering="name")
    def kernel(self, kernel: Kernel):
        return format_html(
            "{}<br><small><code>{}</code> · {} MB</small>",
            kernel.name, kernel.sha256[:16], f"{kernel.size / 1_000_000:.1f}",
        )  # fmt: skip

    @admin.display(description="release signature")
    def signature_label(self, kernel: Kernel) -> str:
        return kernel.signature_label

    @admin.display(description="content address")
    def content_address(self, kernel: Kernel) -> str:
        return kernel.content_path

    @admin.display(description="networks booting it")
    def booted_by(self, kernel: Kernel):
        users = _users(kernel)
        if not users:
            return "-"
        return format_html_join(
            ", ",
            '<a href="{}">{}</a>{}',
            (
                (
                    reverse("admin:provisioning_network_change", args=[network.pk]),
                    network.slug,
                    format_html(" <small>({})</small>", how) if how else "",
                )
                for network, how in users
            ),
        )

    @admin.display(description="running on")
    def running(self, kernel: Kernel):
        return running_link(getattr(kernel, "_running", 0), kernel_name=kernel.name)

    @admin.display(description="used by")
    def used_by(self, kernel: Kernel):
        """The branch links serving it, the nodes with it as their own kernel, and the
        switches waiting to boot it."""
        parts = []
        for link in kernel.links.all():
            url = reverse("admin:provisioning_branchlink_change", args=[link.pk])
            parts.append(format_html('link <a href="{}">{}</a>', url, link.name))
        nodes = kernel.overriding_nodes.count()
        if nodes:
            url = reverse("admin:provisioning_node_changelist") + "?" + urlencode(
                {"kernel_override__id__exact": kernel.pk}
            )  # fmt: skip
            parts.append(format_html('<a href="{}">{} node(s)</a> as their own kernel', url, nodes))
        waiting = PendingSwitch.objects.filter(kernel=kernel, state=PendingSwitch.State.PENDING)
        if waiting.exists():
            url = reverse("admin:provisioning_pendingswitch_changelist") + "?" + urlencode(
                {"state__exact": PendingSwitch.State.PENDING}
            )  # fmt: skip
            count = waiting.count()
            parts.append(format_html('<a href="{}">{} pending switch(es)</a>', url, count))
        if not parts:
            return "no link, node or pending switch"
        return format_html_join("; ", "{}", ((part,) for part in parts))

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
                f"Kernel {obj.name} keeps the release signature it has ({obj.signature_label}): it "
                "verifies, and a signature that verifies is never replaced.",
                messages.WARNING,
            )

    def delete_model(self, request, obj) -> None:
        kernels.remove(obj, user=request.user, via="admin")

    def delete_queryset(self, request, queryset) -> None:
        for kernel in queryset:
            kernels.remove(kernel, user=request.user, via="admin")

    def get_deleted_objects(self, objs, request):
        confirming = request.method == "POST" and request.POST.get("post")
        for kernel in [] if confirming else objs:
            targets = Network.objects.rolling_back_to(kernel)
            if targets:
                slugs = ", ".join(n.slug for n in targets)
                self.message_user(
                    request,
                    f"Kernel {kernel.name} is what {slugs} would roll back to: after deleting it, "
                    "a rollback of that network has nothing to go back to.",
                    messages.WARNING,
                )
        return super().get_deleted_objects(objs, request)

    @admin.action(description="Boot this kernel on networks...")
    def promote(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "Pick exactly one kernel to promote.", messages.ERROR)
            return None
        kernel = queryset.get()
        form = PromoteForm(request.POST if "apply" in request.POST else None, arch=kernel.arch)
        machines_of = "" if kernel.arch == Arch.AMD64 else f" on {kernel.arch} machines"
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
                self.message_user(request, f"{who} {kernel.name}{machines_of}.", messages.SUCCESS)
            return None
        return TemplateResponse(
            request,
            "admin/provisioning/action_form.html",
            {
                **self.admin_site.each_context(request),
                "title": f"Boot {kernel.name} on networks",
                "intro": f"Nodes of the networks you pick boot this kernel{machines_of} from "
                "their next boot. Each network says how many machines ran one of its "
                f"{kernel.arch} kernels at their latest boot: they are the machines it reaches.",
                "form": form,
                "queryset": queryset,
                "action": "promote",
                "opts": self.model._meta,
            },
        )


@admin.register(KernelRecord)
class KernelRecordAdmin(ReadOnlyAdmin):
    list_display = ("at", "kernel_name", "action", "changed_by", "changed_via", "note")
    list_filter = ("action", "at")
    search_fields = ("kernel_name", "sha256", "changed_via", "note")
    date_hierarchy = "at"
