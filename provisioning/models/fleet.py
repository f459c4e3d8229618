"""The machines: farms, the nodes that boot (known by MAC) and what each was served."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models, transaction
from django.db.models import Q
from django.utils import timezone

from ..validators import FARMER_ID_MAX, normalise_mac, validate_kernel_args, validate_mac
from .kernels import Arch, Kernel
from .links import BranchLink, actor_fields
from .networks import Network


class Farm(models.Model):
    """A farmer's farm on the grid, identified by the farm ID Zero-OS registers nodes under."""

    farmer_id = models.PositiveBigIntegerField(
        "farm ID",
        unique=True,
        validators=[MinValueValidator(1), MaxValueValidator(FARMER_ID_MAX)],
    )
    name = models.CharField(max_length=100, blank=True)
    notes = models.TextField(blank=True)
    active = models.BooleanField(
        default=True, help_text="Nodes of an inactive farm are told so and do not boot."
    )

    class Meta:
        ordering = ["farmer_id"]
        verbose_name = "farm"
        constraints = [
            models.CheckConstraint(
                condition=Q(farmer_id__gte=1) & Q(farmer_id__lte=FARMER_ID_MAX),
                name="farm_id_fits_uint32",
            )
        ]

    def __str__(self) -> str:
        return f"{self.farmer_id} {self.name}".strip()


class NodeQuerySet(models.QuerySet):
    def for_mac(self, mac: str) -> Node | None:
        return (
            self.select_related(
                "farm",
                "network__kernel",
                "network__link__kernel",
                "kernel_override",
                "link_override__kernel",
            )
            .filter(mac=normalise_mac(mac))
            .first()
        )

    def pending(self) -> NodeQuerySet:
        return self.filter(Q(farm__isnull=True) | Q(network__isnull=True))

    def approve(self, farm: Farm, network: Network, *, user=None, via: str = "") -> int:
        """Give these nodes a farm and a network (and let them boot): they boot at their
        next retry. The admin's action and the API both come here, and it is recorded."""
        what = f"approved: farm {farm.farmer_id}, network {network.slug}"
        return self._change(what, user, via, farm=farm, network=network, enabled=True)

    def set_enabled(self, enabled: bool, *, user=None, via: str = "") -> int:
        """Let these nodes boot, or tell them they may not; recorded."""
        return self._change("enabled" if enabled else "disabled", user, via, enabled=enabled)

    def _change(self, what: str, user, via: str, **values) -> int:
        with transaction.atomic():
            # Lock the nodes only: PostgreSQL cannot lock the nullable side of the farm join.
            nodes = list(self.select_for_update(of=("self",)).select_related("farm"))
            count = self.model.objects.filter(pk__in=[n.pk for n in nodes]).update(**values)
            for node in nodes:  # the rows name the farm the node is in now
                for field, value in values.items():
                    setattr(node, field, value)
            FleetChange.objects.bulk_create(
                FleetChange.about(node, what, user=user, via=via) for node in nodes
            )
        return count


class Node(models.Model):
    """A physical server, known by the MAC address of the NIC it boots from."""

    mac = models.CharField(
        "MAC address",
        max_length=17,
        unique=True,
        validators=[validate_mac],
        help_text="52:54:00:ab:cd:ef, 52-54-00-AB-CD-EF or 525400abcdef; stored as the first.",
    )
    farm = models.ForeignKey(
        Farm, on_delete=models.PROTECT, null=True, blank=True, related_name="nodes"
    )
    network = models.ForeignKey(
        Network, on_delete=models.PROTECT, null=True, blank=True, related_name="nodes"
    )
    kernel_override = models.ForeignKey(
        Kernel,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="overriding_nodes",
        help_text="Boot this kernel instead of the network's.",
    )
    link_override = models.ForeignKey(
        BranchLink,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="overriding_nodes",
        help_text="Or boot whatever this branch link points at (the newest build of a branch).",
    )
    extra_args = models.CharField(
        "extra kernel arguments", max_length=512, blank=True, validators=[validate_kernel_args]
    )
    enabled = models.BooleanField(
        default=True, help_text="A disabled node is told so and does not boot."
    )
    notes = models.TextField(blank=True)
    first_seen = models.DateTimeField(null=True, blank=True, editable=False)
    last_seen = models.DateTimeField(null=True, blank=True, editable=False)
    last_ip = models.GenericIPAddressField(null=True, blank=True, editable=False)
    boot_count = models.PositiveIntegerField(default=0, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    objects = NodeQuerySet.as_manager()

    class Meta:
        ordering = ["mac"]
        verbose_name = "node"

    def __str__(self) -> str:
        return self.mac

    def save(self, *args, **kwargs) -> None:
        self.mac = normalise_mac(self.mac)
        super().save(*args, **kwargs)

    @property
    def is_pending(self) -> bool:
        return self.farm_id is None or self.network_id is None

    def clean(self) -> None:
        if self.kernel_override_id and self.link_override_id:
            raise ValidationError(
                "choose a kernel or a branch link to override with, not both", code="both"
            )

    @property
    def kernel(self) -> Kernel | None:
        return self.kernel_for(Arch.AMD64)

    def kernel_for(self, arch: str) -> Kernel | None:
        """What the node boots next on `arch` machines: its own kernel or link, else its
        network's (which is not necessarily what it runs: see LatestBoot)."""
        if self.kernel_override_id:
            return self.kernel_override
        if self.link_override_id:
            return self.link_override.kernel
        return self.network.kernel_for(arch) if self.network_id else None


class FleetChange(models.Model):
    """What changed on a farm or a node, when, and by whom or by what (a token, a command).

    Networks, kernels and links have their own trails (KernelChange, LinkChange); this is the
    trail of farms and nodes. Read-only once written; the farm and MAC are kept as text so
    the row outlives what it is about.
    """

    changed_at = models.DateTimeField(default=timezone.now, db_index=True)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    changed_via = models.CharField(max_length=120, blank=True)
    farmer_id = models.PositiveBigIntegerField("farm ID", null=True, blank=True, db_index=True)
    mac = models.CharField("MAC address", max_length=17, blank=True, db_index=True)
    what = models.CharField(max_length=300)

    class Meta:
        ordering = ["-changed_at", "-pk"]
        verbose_name = "farm or node change"

    def __str__(self) -> str:
        return f"{self.changed_at:%Y-%m-%d %H:%M:%S} {self.mac or self.farmer_id}: {self.what}"

    @classmethod
    def about(cls, subject: Farm | Node, what: str, *, user=None, via: str = "") -> FleetChange:
        """An unsaved row about a farm or a node (`what` is cut to fit)."""
        if isinstance(subject, Farm):
            where = {"farmer_id": subject.farmer_id}
        else:
            where = {
                "mac": subject.mac,
                "farmer_id": subject.farm.farmer_id if subject.farm else None,
            }
        return cls(what=what[:300], **where, **actor_fields(user, via))

    @classmethod
    def record(cls, subject: Farm | Node, what: str, *, user=None, via: str = "") -> FleetChange:
        change = cls.about(subject, what, user=user, via=via)
        change.save()
        return change


class BootEvent(models.Model):
    """One thing served to a node: a script or a kernel download. Answers "who runs what".
    A farmer's download of a PXE kit is recorded too: from then on a LAN may boot from it."""

    class Kind(models.TextChoices):
        SCRIPT = "script", "boot script"
        KERNEL = "kernel", "kernel download"
        PENDING = "pending", "waiting for approval"
        REFUSED = "refused", "refused (disabled)"
        PXE_KIT = "pxe-kit", "PXE kit download"
        # What the node itself reports (provisioning.reports).
        ARRIVED = "arrived", "kernel arrived"
        FAILED = "failed", "kernel download failed"
        NO_NETWORK = "no-network", "no network"
        START_FAILED = "start-failed", "kernel could not be started"

    #: The kinds a node reports about itself, tied to the script it was served by a token.
    REPORTS = (Kind.ARRIVED, Kind.FAILED, Kind.NO_NETWORK, Kind.START_FAILED)

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    client_ip = models.GenericIPAddressField(null=True, blank=True)
    network = models.ForeignKey(
        Network, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    farmer_id = models.PositiveBigIntegerField("farm ID", null=True, blank=True)
    node = models.ForeignKey(
        Node, on_delete=models.SET_NULL, null=True, blank=True, related_name="boot_events"
    )
    mac = models.CharField("MAC address", max_length=17, blank=True)
    kernel_name = models.CharField(max_length=200, blank=True)
    kernel_sha256 = models.CharField(max_length=64, blank=True)
    user_agent = models.CharField(max_length=200, blank=True)
    path = models.CharField(max_length=300, blank=True)
    # One boot: the token of the script served (provisioning.reports), carried by the script's
    # kernel download and the node's reports. A report also says which card and attempt, the
    # error iPXE gave, and how long the kernel took to arrive.
    token = models.CharField(max_length=64, blank=True)
    card = models.PositiveSmallIntegerField(default=0)
    attempt = models.PositiveSmallIntegerField(default=0)
    error = models.CharField("iPXE error", max_length=16, blank=True)
    seconds = models.FloatField("download seconds", null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name = "boot event"
        # A node's report is taken once: a replay of the same report of the same boot is not
        # written again (the index holds report rows only, so scripts and downloads do not pay
        # for it).
        constraints = [
            models.UniqueConstraint(
                fields=["token", "kind", "card", "attempt"],
                condition=models.Q(kind__in=["arrived", "failed", "no-network", "start-failed"]),
                name="bootevent_one_report",
            )
        ]
        # Each filter and search of the admin (and the API's) is one of these, newest first,
        # so a page of a history of millions reads a page of index entries.
        indexes = [
            models.Index(fields=[field, "-created_at"], name=f"bootevent_{field}_newest")
            for field in ("kind", "network", "farmer_id", "mac", "client_ip", "kernel_name",
                          "kernel_sha256")
        ]  # fmt: skip

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.kind} {self.client_ip or '-'}"


class LatestBoot(models.Model):
    """The latest boot of each machine the service has seen: which kernel it runs and since
    when, and whether its latest script was followed by a kernel download.

    Kept up to date by the boot-history writer (provisioning.running), so "who runs what"
    is one indexed query however long the history grows. A machine is known by its MAC when
    the request names one (/provision, and the boot script's kernel download), else by its
    client address.
    """

    key = models.CharField(max_length=64, unique=True)
    mac = models.CharField("MAC address", max_length=17, blank=True, db_index=True)
    client_ip = models.GenericIPAddressField(null=True, blank=True)
    network = models.ForeignKey(
        Network, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    farmer_id = models.PositiveBigIntegerField("farm ID", null=True, blank=True, db_index=True)
    kernel_name = models.CharField("kernel", max_length=200, blank=True, db_index=True)
    kernel_since = models.DateTimeField(
        "runs it since", null=True, blank=True, help_text="Its first download of this kernel."
    )
    kernel_at = models.DateTimeField("last kernel download", null=True, blank=True)
    script_at = models.DateTimeField("last boot script", null=True, blank=True, db_index=True)
    # How its latest boot went, from what the service served and what the node reported.
    milestone = models.CharField(
        "last milestone", max_length=16, blank=True, choices=BootEvent.Kind.choices
    )
    milestone_at = models.DateTimeField("at", null=True, blank=True, db_index=True)
    scripts = models.PositiveIntegerField(
        "scripts since it last booted", default=0,
        help_text="Boot scripts served since its kernel last arrived.",
    )  # fmt: skip
    failures = models.PositiveIntegerField(
        "failed downloads", default=0, help_text="Failed kernel downloads of its latest boot."
    )
    error = models.CharField("iPXE error", max_length=16, blank=True)
    download_seconds = models.FloatField("kernel download (s)", null=True, blank=True)

    class Meta:
        ordering = ["-script_at", "key"]
        verbose_name = "latest boot"
        verbose_name_plural = "latest boots (who runs what)"

    def __str__(self) -> str:
        return self.mac or self.client_ip or self.key

    @property
    def failed_on_the_way(self) -> bool:
        """Its latest script was not followed by a kernel download."""
        return self.script_at is not None and (
            self.kernel_at is None or self.kernel_at < self.script_at
        )


class BootToday(LatestBoot):
    """The fleet's boots of today, one row a machine: booted, in progress, stuck or failing,
    and why (provisioning.timeline). The same rows as LatestBoot, seen from that question."""

    class Meta:
        proxy = True
        verbose_name = "boot today"
        verbose_name_plural = "boots today (the last 24 hours: which failed, and why)"
