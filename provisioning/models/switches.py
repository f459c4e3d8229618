"""Four eyes: on the networks ZOSBOOT_FOUR_EYES_NETWORKS lists, a kernel switch asked for in
the admin or the API waits here until a second staff user approves it."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import models, transaction
from django.utils import timezone

from .kernels import Arch, Kernel
from .links import BranchLink, actor_fields
from .networks import KernelChange, Network


class PendingSwitch(models.Model):
    """A switch of what a protected network boots, asked for and not yet decided."""

    class State(models.TextChoices):
        PENDING = "pending", "waiting for a second operator"
        APPROVED = "approved", "approved and made"
        REJECTED = "rejected", "rejected"

    network = models.ForeignKey(Network, on_delete=models.CASCADE, related_name="pending_switches")
    arch = models.CharField(max_length=8, choices=Arch.choices, default=Arch.AMD64)
    # PROTECT: the kernel or link a switch waits to point at stays until it is decided.
    kernel = models.ForeignKey(
        Kernel, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    link = models.ForeignKey(
        BranchLink, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    note = models.CharField(max_length=200, blank=True)
    state = models.CharField(max_length=8, choices=State.choices, default=State.PENDING)
    changed_at = models.DateTimeField("asked at", default=timezone.now, db_index=True)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
        related_name="+", verbose_name="asked by",
    )  # fmt: skip
    changed_via = models.CharField("asked through", max_length=120, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-changed_at", "-pk"]
        verbose_name = "pending kernel switch"
        verbose_name_plural = "pending kernel switches"

    def __str__(self) -> str:
        return f"{self.network} ({self.arch}): {self.target_label}"

    @property
    def target_label(self) -> str:
        if self.link_id:
            return f"link {self.link.name}"
        return self.kernel.name if self.kernel_id else "-"

    @property
    def asked_by_label(self) -> str:
        return self.changed_by.get_username() if self.changed_by else self.changed_via

    @classmethod
    def ask(cls, network, kernel, link, *, arch, user, via: str, note: str) -> PendingSwitch:
        return cls.objects.create(
            network=network, arch=arch, kernel=kernel, link=link, note=note[:200],
            **actor_fields(user, via),
        )  # fmt: skip

    def approve(self, user) -> KernelChange | None:
        """Make the switch, in the names of both: who asked, and `user`, who approves. The
        checks the switch itself makes (architecture, signatures) apply now."""
        with transaction.atomic():
            pending = self._decide(user)
            change = self.network._point(
                pending.kernel, pending.link, arch=pending.arch, user=pending.changed_by,
                via=pending.changed_via, note=pending.note, approved_by=user,
            )  # fmt: skip
            self._close(pending, PendingSwitch.State.APPROVED, user)
        return change

    def reject(self, user) -> None:
        with transaction.atomic():
            self._close(self._decide(user, rejecting=True), PendingSwitch.State.REJECTED, user)

    def _decide(self, user, rejecting: bool = False) -> PendingSwitch:
        pending = PendingSwitch.objects.select_for_update().get(pk=self.pk)
        if pending.state != PendingSwitch.State.PENDING:
            raise PermissionDenied(f"this switch was {pending.get_state_display()} already")
        if user is None or not user.is_staff:
            raise PermissionDenied("only a staff user can decide a switch")
        if not rejecting and pending.changed_by_id == user.pk:
            raise PermissionDenied("you asked for this switch: a second operator must approve it")
        return pending

    def _close(self, pending: PendingSwitch, state: str, user) -> None:
        PendingSwitch.objects.filter(pk=pending.pk).update(
            state=state, decided_by=user, decided_at=timezone.now()
        )
        self.state, self.decided_by = state, user
