"""Networks and the kernels they boot: one pointer per architecture (amd64, arm64), each
changed through the same audited path, and the configuration generation every worker checks
its copy against."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models, transaction

from .. import signatures
from ..validators import validate_kernel_args, validate_network_slug
from .generation import ConfigGeneration
from .kernels import Arch, Kernel
from .links import AuditedChange, BranchLink, actor_fields


class NetworkQuerySet(models.QuerySet):
    def active(self) -> NetworkQuerySet:
        return self.filter(active=True)

    def rolling_back_to(self, kernel: Kernel) -> list[Network]:
        """The networks whose rollback would boot this kernel (a handful of networks)."""
        return [network for network in self if network.rollback_target(kernel.arch) == kernel]


#: Each architecture's pointer: the (kernel, link) fields of a Network. amd64 keeps the
#: field names it always had (nodes, images and scripts in the field rely on them).
@dataclass(frozen=True)
class Step:
    """A move of one of a network's pointers, worked out before it is made (a rollback, a
    return to an entry of the history): made at once, or asked for under four eyes."""

    kernel: Kernel | None
    link: BranchLink | None
    arch: str
    note: str

    @property
    def pointer(self) -> tuple[Kernel | None, BranchLink | None]:
        return self.kernel, self.link


POINTER_FIELDS = {Arch.AMD64: ("kernel", "link"), Arch.ARM64: ("kernel_arm64", "link_arm64")}


class Network(models.Model):
    """A Zero-OS grid network (`runmode`): production, testnet, devnet, QA-net, ..."""

    slug = models.CharField(
        max_length=32,
        unique=True,
        validators=[validate_network_slug],
        help_text="Short name used in URLs and passed to Zero-OS as runmode=.",
    )
    name = models.CharField(max_length=100, help_text="Pretty name shown to farmers.")
    active = models.BooleanField(
        default=True, help_text="Inactive networks are hidden from the portal and refuse to boot."
    )
    kernel = models.ForeignKey(
        Kernel,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="networks",
        help_text="The kernel nodes of this network boot (served as /kernel/net/SLUG.efi).",
    )
    link = models.ForeignKey(
        BranchLink,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="networks",
        help_text="Instead of a kernel: follow this branch link and boot whatever build it "
        "points at (dev and QA networks track the newest build; prod stays pinned).",
    )
    kernel_arm64 = models.ForeignKey(
        Kernel,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="networks_arm64",
        verbose_name="arm64 kernel",
        help_text="The kernel arm64 machines of this network boot (served as "
        "/kernel/net/arm64/SLUG.efi). Empty: arm64 machines are told there is none.",
    )
    link_arm64 = models.ForeignKey(
        BranchLink,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="networks_arm64",
        verbose_name="arm64 branch link",
        help_text="Instead of an arm64 kernel: follow this branch link on arm64 machines.",
    )
    extra_args = models.CharField(
        "default extra kernel arguments",
        max_length=512,
        blank=True,
        validators=[validate_kernel_args],
        help_text="Added to every node's command line on this network, after the farm.",
    )

    objects = NetworkQuerySet.as_manager()

    #: select_related() for every architecture's pointer and the build its link serves.
    POINTERS_JOINED = ("kernel", "link__kernel", "kernel_arm64", "link_arm64__kernel")

    class Meta:
        ordering = ["slug"]
        verbose_name = "network"

    def __str__(self) -> str:
        return self.slug

    @property
    def kernel_path(self) -> str:
        return self.kernel_path_for(Arch.AMD64)

    def kernel_path_for(self, arch: str) -> str:
        """Where the network's kernel for `arch` is served: `/kernel/net/SLUG.efi` for amd64
        (the field's URL), `/kernel/net/arm64/SLUG.efi` for arm64."""
        if arch == Arch.AMD64:
            return f"/kernel/net/{self.slug}.efi"
        return f"/kernel/net/{arch}/{self.slug}.efi"

    def clean(self) -> None:
        saved = Network.objects.filter(pk=self.pk).first() if self.pk else None
        for arch, (kernel_field, link_field) in POINTER_FIELDS.items():
            kernel, link = self.pointer(arch)
            if kernel is not None and link is not None:
                raise ValidationError(
                    f"{arch}: pin a kernel or follow a branch link, not both",
                    code="kernel_and_link",
                )
            # A pointer left as it was is not judged again (a network pinned before a
            # signature policy keeps its other fields editable).
            if saved is not None and saved.pointer(arch) == (kernel, link):
                continue
            try:
                self.check_target(kernel, link, arch=arch)
            except ValidationError as exc:
                raise ValidationError(
                    {link_field if link is not None else kernel_field: exc.messages[0]},
                    code=exc.error_list[0].code or "refused",
                ) from None

    def pointer(self, arch: str) -> tuple[Kernel | None, BranchLink | None]:
        """The (kernel, link) the network's `arch` pointer holds (at most one is set)."""
        kernel_field, link_field = POINTER_FIELDS[Arch(arch)]
        kernel = getattr(self, kernel_field) if getattr(self, f"{kernel_field}_id") else None
        link = getattr(self, link_field) if getattr(self, f"{link_field}_id") else None
        return kernel, link

    def kernel_for(self, arch: str) -> Kernel | None:
        """What `arch` machines of the network boot now: the link's kernel when it follows
        one."""
        kernel, link = self.pointer(arch)
        return link.kernel if link is not None else kernel

    @property
    def current_kernel(self) -> Kernel | None:
        """What the network boots now on amd64 machines (its link's kernel when it follows
        one)."""
        return self.kernel_for(Arch.AMD64)

    @property
    def current_arm64_kernel(self) -> Kernel | None:
        return self.kernel_for(Arch.ARM64)

    @property
    def has_kernel(self) -> bool:
        """Whether machines of some architecture can boot it."""
        return any(self.kernel_for(arch) is not None for arch in Arch)

    def switch_kernel(
        self,
        kernel: Kernel | None,
        user=None,
        note: str = "",
        via: str = "",
        arch: str = Arch.AMD64,
    ) -> KernelChange | None:
        """Pin the network's `arch` machines to a kernel built for `arch`; recorded with who
        did it and what it was before. ValidationError for a kernel of another
        architecture."""
        return self._point(kernel, None, arch=arch, user=user, note=note, via=via)

    def follow_link(
        self,
        link: BranchLink,
        user=None,
        note: str = "",
        via: str = "",
        arch: str = Arch.AMD64,
    ) -> KernelChange | None:
        """Make the network's `arch` machines boot whatever `link` points at, now and after
        every publish."""
        return self._point(None, link, arch=arch, user=user, note=note, via=via)

    def check_target(self, kernel, link, *, arch: str) -> None:
        """Raise ValidationError unless `arch` machines of this network may boot the kernel
        (or the link's): its architecture, and a verified signature where the deployment
        requires one (signatures.SignatureError, a ValidationError)."""
        chosen = link.kernel if link is not None else kernel
        if chosen is None:
            return
        chosen.check_arch(arch)
        signatures.require_signed(chosen, where=f"network {self.slug}", network_slug=self.slug)

    def _point(
        self, kernel, link, *, arch: str, user, note: str, via: str, approved_by=None
    ) -> KernelChange | None:
        arch = Arch(arch)
        self.check_target(kernel, link, arch=arch)
        kernel_field, link_field = POINTER_FIELDS[arch]
        with transaction.atomic():
            current = Network.objects.select_for_update().get(pk=self.pk)
            was_kernel, was_link = current.pointer(arch)
            if (was_kernel, was_link) == (kernel, link):
                setattr(self, kernel_field, kernel)
                setattr(self, link_field, link)
                return None
            change = KernelChange.objects.create(
                network=self,
                arch=arch,
                previous=was_kernel,
                previous_name=was_kernel.name if was_kernel else "",
                previous_link=was_link,
                previous_link_name=was_link.name if was_link else "",
                new=kernel,
                new_name=kernel.name if kernel else "",
                new_link=link,
                new_link_name=link.name if link else "",
                note=note,
                approved_by=approved_by,
                **actor_fields(user, via),
            )
            Network.objects.filter(pk=self.pk).update(**{kernel_field: kernel, link_field: link})
            ConfigGeneration.bump()
            setattr(self, kernel_field, kernel)
            setattr(self, link_field, link)
        return change

    def rollback_kernel(self, user=None, via: str = "", arch: str = Arch.AMD64) -> KernelChange:
        """Go back to what the network's `arch` machines booted before its last switch
        (kernel or link)."""
        step = self.rollback_step(arch)
        change = self._point(*step.pointer, arch=arch, user=user, note=step.note, via=via)
        assert change is not None
        return change

    def restore(self, change: KernelChange, user=None, via: str = "") -> KernelChange | None:
        """Boot again what one entry of the history switched the network to, however far
        back (rollback to any entry, not only the last), on that entry's architecture."""
        step = self.restore_step(change)
        return self._point(*step.pointer, arch=step.arch, user=user, note=step.note, via=via)

    def rollback_step(self, arch: str = Arch.AMD64) -> Step:
        """What a rollback of `arch` points at: what its last switch replaced.
        KernelChange.NoPrevious when there is nothing before it to go back to."""
        last = self._last_change(arch)
        if last is None or (last.previous is None and last.previous_link is None):
            what = "kernel" if arch == Arch.AMD64 else f"{arch} kernel"
            raise KernelChange.NoPrevious(
                f"network {self.slug} has no previous {what} to roll back to"
            )
        note = f"rollback from {last.new_link_name or last.new_name}"
        return Step(last.previous, last.previous_link, arch, note)

    def restore_step(self, change: KernelChange) -> Step:
        """What going back to `change` points at; KernelChange.NoPrevious unless it is this
        network's and what it set still exists."""
        if change.network_id != self.pk:
            raise KernelChange.NoPrevious(f"that change is not one of network {self.slug}")
        if change.new is None and change.new_link is None:
            gone = change.new_label
            raise KernelChange.NoPrevious(
                f"{gone} no longer exists" if gone != "-" else "that change set no kernel"
            )
        when = f"{change.changed_at:%Y-%m-%d %H:%M:%S}"
        note = f"rollback to the switch of {when} ({change.new_label})"
        return Step(change.new, change.new_link, change.arch, note)

    def _last_change(self, arch: str) -> KernelChange | None:
        changes = self.kernel_changes.filter(arch=arch).order_by("-changed_at", "-pk")
        return changes.select_related("previous", "previous_link").first()

    def rollback_target(self, arch: str = Arch.AMD64) -> Kernel | None:
        """The kernel a rollback of `arch` would boot (the one before the last switch)."""
        last = self._last_change(arch)
        return last.previous if last else None


class KernelChange(AuditedChange):
    """One switch of the kernel a network boots: the audit trail that makes rollback possible."""

    class NoPrevious(Exception):
        pass

    network = models.ForeignKey(Network, on_delete=models.CASCADE, related_name="kernel_changes")
    arch = models.CharField(
        "architecture",
        max_length=8,
        choices=Arch.choices,
        default=Arch.AMD64,
        help_text="Which of the network's pointers changed: what machines of this "
        "architecture boot.",
    )
    # A network may follow a branch link instead of a kernel: both ends record which.
    previous_link = models.ForeignKey(
        BranchLink, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    previous_link_name = models.CharField(max_length=200, blank=True)
    new_link = models.ForeignKey(
        BranchLink, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    new_link_name = models.CharField(max_length=200, blank=True)
    # Four eyes (provisioning.switching): the second staff user who approved the switch.
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta(AuditedChange.Meta):
        verbose_name = "kernel change"

    def __str__(self) -> str:
        where = str(self.network) if self.arch == Arch.AMD64 else f"{self.network} ({self.arch})"
        return f"{where}: {self.previous_label} -> {self.new_label}"

    @property
    def previous_label(self) -> str:
        return _label(self.previous_name, self.previous_link_name)

    @property
    def new_label(self) -> str:
        return _label(self.new_name, self.new_link_name)


def _label(kernel_name: str, link_name: str) -> str:
    return f"link {link_name}" if link_name else kernel_name or "-"
