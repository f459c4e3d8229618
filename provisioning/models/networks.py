"""Networks and the kernel each boots: a pointer, changed through an audited path, and the
configuration generation every worker checks its copy against."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models, transaction

from ..validators import validate_kernel_args, validate_network_slug
from .generation import ConfigGeneration
from .kernels import Kernel
from .links import AuditedChange, BranchLink, actor_fields


class NetworkQuerySet(models.QuerySet):
    def active(self) -> NetworkQuerySet:
        return self.filter(active=True)

    def rolling_back_to(self, kernel: Kernel) -> list[Network]:
        """The networks whose rollback would boot this kernel (a handful of networks)."""
        return [network for network in self if network.rollback_target() == kernel]


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
    extra_args = models.CharField(
        "default extra kernel arguments",
        max_length=512,
        blank=True,
        validators=[validate_kernel_args],
        help_text="Added to every node's command line on this network, after the farm.",
    )

    objects = NetworkQuerySet.as_manager()

    class Meta:
        ordering = ["slug"]
        verbose_name = "network"

    def __str__(self) -> str:
        return self.slug

    @property
    def kernel_path(self) -> str:
        return f"/kernel/net/{self.slug}.efi"

    def clean(self) -> None:
        if self.kernel_id and self.link_id:
            raise ValidationError(
                "pin a kernel or follow a branch link, not both", code="kernel_and_link"
            )

    @property
    def current_kernel(self) -> Kernel | None:
        """What the network boots now: its link's kernel when it follows one."""
        return self.link.kernel if self.link_id else self.kernel

    def switch_kernel(
        self, kernel: Kernel | None, user=None, note: str = "", via: str = ""
    ) -> KernelChange | None:
        """Pin the network to a kernel; recorded with who did it and what it was before."""
        return self._point(kernel, None, user=user, note=note, via=via)

    def follow_link(
        self, link: BranchLink, user=None, note: str = "", via: str = ""
    ) -> KernelChange | None:
        """Make the network boot whatever `link` points at, now and after every publish."""
        return self._point(None, link, user=user, note=note, via=via)

    def _point(self, kernel, link, *, user, note: str, via: str) -> KernelChange | None:
        with transaction.atomic():
            current = Network.objects.select_for_update().get(pk=self.pk)
            if (current.kernel_id, current.link_id) == (
                kernel.pk if kernel else None,
                link.pk if link else None,
            ):
                self.kernel, self.link = kernel, link
                return None
            change = KernelChange.objects.create(
                network=self,
                previous=current.kernel,
                previous_name=current.kernel.name if current.kernel else "",
                previous_link=current.link,
                previous_link_name=current.link.name if current.link else "",
                new=kernel,
                new_name=kernel.name if kernel else "",
                new_link=link,
                new_link_name=link.name if link else "",
                note=note,
                **actor_fields(user, via),
            )
            Network.objects.filter(pk=self.pk).update(kernel=kernel, link=link)
            ConfigGeneration.bump()
            self.kernel, self.link = kernel, link
        return change

    def rollback_kernel(self, user=None, via: str = "") -> KernelChange:
        """Go back to what the network booted before its last switch (kernel or link)."""
        last = self.kernel_changes.order_by("-changed_at", "-pk").first()
        if last is None or (last.previous is None and last.previous_link is None):
            raise KernelChange.NoPrevious(
                f"network {self.slug} has no previous kernel to roll back to"
            )
        note = f"rollback from {last.new_link_name or last.new_name}"
        change = self._point(last.previous, last.previous_link, user=user, note=note, via=via)
        assert change is not None
        return change

    def restore(self, change: KernelChange, user=None, via: str = "") -> KernelChange | None:
        """Boot again what one entry of the history switched the network to, however far
        back (rollback to any entry, not only the last)."""
        if change.network_id != self.pk:
            raise KernelChange.NoPrevious(f"that change is not one of network {self.slug}")
        if change.new is None and change.new_link is None:
            gone = change.new_label
            raise KernelChange.NoPrevious(
                f"{gone} no longer exists" if gone != "-" else "that change set no kernel"
            )
        when = f"{change.changed_at:%Y-%m-%d %H:%M:%S}"
        note = f"rollback to the switch of {when} ({change.new_label})"
        return self._point(change.new, change.new_link, user=user, note=note, via=via)

    def rollback_target(self) -> Kernel | None:
        """The kernel a rollback would boot (the one before the last switch), if any."""
        last = self.kernel_changes.order_by("-changed_at", "-pk").select_related("previous")
        last = last.first()
        return last.previous if last else None

    def kernel_since(self):
        last = self.kernel_changes.order_by("-changed_at", "-pk").first()
        return last.changed_at if last else None


class KernelChange(AuditedChange):
    """One switch of the kernel a network boots: the audit trail that makes rollback possible."""

    class NoPrevious(Exception):
        pass

    network = models.ForeignKey(Network, on_delete=models.CASCADE, related_name="kernel_changes")
    # A network may follow a branch link instead of a kernel: both ends record which.
    previous_link = models.ForeignKey(
        BranchLink, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    previous_link_name = models.CharField(max_length=200, blank=True)
    new_link = models.ForeignKey(
        BranchLink, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    new_link_name = models.CharField(max_length=200, blank=True)

    class Meta(AuditedChange.Meta):
        verbose_name = "kernel change"

    def __str__(self) -> str:
        return f"{self.network}: {self.previous_label} -> {self.new_label}"

    @property
    def previous_label(self) -> str:
        return _label(self.previous_name, self.previous_link_name)

    @property
    def new_label(self) -> str:
        return _label(self.new_name, self.new_link_name)


def _label(kernel_name: str, link_name: str) -> str:
    return f"link {link_name}" if link_name else kernel_name or "-"
