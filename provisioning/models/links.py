"""Branch links: a name that always serves the newest build of a branch.

The Zero-OS build pipeline publishes `zero-os-<branch>-<mode>-<sha10>.efi` and points
`zero-os-<branch>-<mode>.efi` at it, as the old service's top-level symlinks did. Nodes and
docs name the link (`/kernel/<link>`, the 4th URL segment), networks may follow one, and every
move of a link is recorded like a network's kernel switch.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.utils import timezone

from .. import signatures
from ..validators import validate_kernel_name
from .generation import ConfigGeneration
from .kernels import Kernel


def actor_fields(user, via: str) -> dict:
    """Who made a change, for an audit row: an admin user, or what acted (a token, a command)."""
    return {
        "changed_by": user if user is not None and user.is_authenticated else None,
        "changed_via": via[:120],
    }


class AuditedChange(models.Model):
    """What every audit row records: from which kernel to which, when, by whom or by what
    (an API token, a command), and why. Read-only once written."""

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
    changed_via = models.CharField(
        max_length=120, blank=True, help_text="The API token, command or import that did it."
    )
    note = models.CharField(max_length=200, blank=True)

    class Meta:
        abstract = True
        ordering = ["-changed_at", "-pk"]


class BranchLink(models.Model):
    """A published name that points at one build, moved by each publish."""

    class NoPrevious(Exception):
        pass

    name = models.CharField(
        max_length=200,
        unique=True,
        validators=[validate_kernel_name],
        help_text="e.g. zero-os-development-generic.efi; served at /kernel/NAME.",
    )
    kernel = models.ForeignKey(
        Kernel,
        on_delete=models.PROTECT,
        related_name="links",
        help_text="The build the link serves now.",
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["name"]
        verbose_name = "branch link"

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if Kernel.objects.filter(name=self.name).exists():
            raise ValidationError(
                {"name": "a kernel already has this name; a link needs a name of its own"},
                code="taken",
            )

    @classmethod
    def point(
        cls, name: str, kernel: Kernel, user=None, note: str = "", via: str = ""
    ) -> tuple[BranchLink, LinkChange | None]:
        """Point the link `name` at `kernel` (made on first use); recorded like any switch."""
        validate_kernel_name(name)
        if Kernel.objects.filter(name=name).exists():
            raise ValidationError(
                f"{name} is a kernel, not a link; name the link differently", code="taken"
            )
        with transaction.atomic():
            link = cls.objects.select_for_update().filter(name=name).first()
            if link is None:
                signatures.require_signed(kernel, where=f"branch link {name}", link=True)
            else:
                link.check_move(kernel)
            previous = link.kernel if link else None
            if link is None:
                link = cls.objects.create(name=name, kernel=kernel)
            elif link.kernel_id == kernel.pk:
                return link, None
            else:
                cls.objects.filter(pk=link.pk).update(kernel=kernel)
                link.kernel = kernel
            change = LinkChange.objects.create(
                link=link,
                previous=previous,
                previous_name=previous.name if previous else "",
                new=kernel,
                new_name=kernel.name,
                note=note,
                **actor_fields(user, via),
            )
            ConfigGeneration.bump()
        return link, change

    def check_move(self, kernel: Kernel) -> None:
        """Raise ValidationError if the link may not serve `kernel`: what `point` checks."""
        signatures.require_signed(kernel, where=f"branch link {self.name}", link=True)
        self.check_followers(kernel)

    def check_followers(self, kernel: Kernel) -> None:
        """Raise ValidationError if a network follows this link on machines of another
        architecture than `kernel`'s (moving it would send them a kernel they cannot boot), or
        needs signed kernels and `kernel`'s signature does not verify."""
        followers = {"amd64": self.networks.all(), "arm64": self.networks_arm64.all()}
        for arch, networks in followers.items():
            slugs = sorted(network.slug for network in networks)
            if slugs and kernel.arch != arch:
                raise ValidationError(
                    f"{', '.join(slugs)} follow{'s' if len(slugs) == 1 else ''} {self.name} on "
                    f"{arch} machines; {kernel.name} is an {kernel.arch} kernel",
                    code="arch_mismatch",
                )
            # A network that boots only signed kernels does through the links it follows.
            for slug in slugs:
                where = f"network {slug} (it follows {self.name})"
                signatures.require_signed(kernel, where=where, network_slug=slug)

    def rollback_target(self) -> LinkChange:
        """The link's last move, whose `previous` a rollback points it back at;
        BranchLink.NoPrevious when there is none."""
        last = self.changes.order_by("-changed_at", "-pk").first()
        if last is None or last.previous is None:
            raise BranchLink.NoPrevious(f"link {self.name} has no previous build to go back to")
        return last

    def rollback(self, user=None, via: str = "") -> LinkChange:
        """Point the link back at the build it served before its last move."""
        last = self.rollback_target()
        _, change = BranchLink.point(
            self.name, last.previous, user=user, note=f"rollback from {last.new_name}", via=via
        )
        assert change is not None
        self.kernel = last.previous
        return change


class LinkChange(AuditedChange):
    """One move of a branch link: the audit trail that makes rollback possible."""

    link = models.ForeignKey(BranchLink, on_delete=models.CASCADE, related_name="changes")

    class Meta(AuditedChange.Meta):
        verbose_name = "branch link change"

    def __str__(self) -> str:
        return f"{self.link}: {self.previous_name or '-'} -> {self.new_name}"
