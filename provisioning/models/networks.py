"""Networks and the kernel each boots: a pointer, changed through an audited path, and the
configuration generation every worker checks its copy against."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.db import models, transaction
from django.utils import timezone

from ..validators import validate_kernel_args, validate_network_slug
from .kernels import Kernel


class NetworkQuerySet(models.QuerySet):
    def active(self) -> NetworkQuerySet:
        return self.filter(active=True)


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
        help_text="The kernel nodes of this network boot (/kernel/net/<slug>.efi).",
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

    def switch_kernel(
        self, kernel: Kernel | None, user=None, note: str = ""
    ) -> KernelChange | None:
        """Point the network at another kernel and record who did it and what it was before."""
        with transaction.atomic():
            current = Network.objects.select_for_update().get(pk=self.pk)
            if current.kernel_id == (kernel.pk if kernel else None):
                self.kernel = kernel
                return None
            change = KernelChange.objects.create(
                network=self,
                previous=current.kernel,
                previous_name=current.kernel.name if current.kernel else "",
                new=kernel,
                new_name=kernel.name if kernel else "",
                changed_by=user if user is not None and user.is_authenticated else None,
                note=note,
            )
            Network.objects.filter(pk=self.pk).update(kernel=kernel)
            ConfigGeneration.bump()
            self.kernel = kernel
        return change

    def rollback_kernel(self, user=None) -> KernelChange:
        """Go back to the kernel the network booted before its last switch."""
        last = self.kernel_changes.order_by("-changed_at", "-pk").first()
        if last is None or last.previous is None:
            raise KernelChange.NoPrevious(
                f"network {self.slug} has no previous kernel to roll back to"
            )
        change = self.switch_kernel(last.previous, user=user, note=f"rollback from {last.new_name}")
        assert change is not None
        return change

    def kernel_since(self):
        last = self.kernel_changes.order_by("-changed_at", "-pk").first()
        return last.changed_at if last else None


class KernelChange(models.Model):
    """One switch of the kernel a network boots: the audit trail that makes rollback possible."""

    class NoPrevious(Exception):
        pass

    network = models.ForeignKey(Network, on_delete=models.CASCADE, related_name="kernel_changes")
    previous = models.ForeignKey(
        Kernel, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    previous_name = models.CharField(max_length=200, blank=True)
    new = models.ForeignKey(
        Kernel, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    new_name = models.CharField(max_length=200, blank=True)
    changed_at = models.DateTimeField(default=timezone.now, db_index=True)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    note = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-changed_at", "-pk"]
        verbose_name = "kernel change"

    def __str__(self) -> str:
        return f"{self.network}: {self.previous_name or '-'} -> {self.new_name or '-'}"


class ConfigGeneration(models.Model):
    """A stamp that changes, in the same transaction, with every change to networks, kernels
    and farms. Workers keep those in memory (`provisioning.lookups`) and compare this one row
    at each request, so a switch made anywhere is served by every worker and instance at once.
    """

    ROW = 1

    id = models.PositiveSmallIntegerField(primary_key=True, default=ROW)
    # Random rather than counted: a stamp never comes back after a restore or a rollback, so a
    # worker can never mistake an old copy for the current one.
    value = models.BigIntegerField(default=0)

    class Meta:
        verbose_name = "configuration generation"

    def __str__(self) -> str:
        return f"{self.value:x}"

    @classmethod
    def bump(cls) -> None:
        value = secrets.randbits(62)
        if not cls.objects.filter(pk=cls.ROW).update(value=value):
            cls.objects.update_or_create(pk=cls.ROW, defaults={"value": value})
