"""What zosboot knows: networks, the kernels they boot, farms, nodes and what nodes did."""

from __future__ import annotations

import os
import secrets

from django.conf import settings
from django.core.files.storage import FileSystemStorage
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models, transaction
from django.db.models import Q
from django.utils import timezone

from .digests import sha256_stream
from .validators import (
    FARMER_ID_MAX,
    normalise_mac,
    validate_kernel_args,
    validate_kernel_name,
    validate_mac,
    validate_network_slug,
)


class KernelStorage(FileSystemStorage):
    """The kernel store. Its location is read from settings at every use (not once at import),
    so `ZOSBOOT_KERNELS_DIR` and overrides of it always apply."""

    @property
    def base_location(self) -> str:
        return str(settings.ZOSBOOT_KERNELS_DIR)

    @property
    def location(self) -> str:
        return os.path.abspath(self.base_location)


def kernel_upload_to(instance: Kernel, filename: str) -> str:
    # The kernel's name is validated to be a plain file name; the uploaded name is ignored.
    return instance.name


class Kernel(models.Model):
    """A Zero-OS kernel file (an EFI-stub bzImage with its initramfs) that nodes can boot."""

    name = models.CharField(
        max_length=200,
        unique=True,
        validators=[validate_kernel_name],
        help_text="File name nodes download it as, e.g. zero-os-development-amd64.efi.",
    )
    file = models.FileField(storage=KernelStorage(), upload_to=kernel_upload_to, max_length=255)
    sha256 = models.CharField(max_length=64, editable=False, blank=True)
    size = models.PositiveBigIntegerField(editable=False, default=0)
    uploaded_at = models.DateTimeField(default=timezone.now, editable=False)
    notes = models.TextField(blank=True)

    class Meta:
        ordering = ["-uploaded_at", "name"]
        verbose_name = "kernel"

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs) -> None:
        # Hash whenever the file is new or replaced; hashing streams, it never loads the file.
        if self.file and (not self.sha256 or not getattr(self.file, "_committed", True)):
            self.sha256, self.size = hash_file(self.file)
        super().save(*args, **kwargs)

    @property
    def download_path(self) -> str:
        return f"/kernel/{self.name}"


def hash_file(fileobj) -> tuple[str, int]:
    fileobj.seek(0)
    digest = sha256_stream(fileobj)
    fileobj.seek(0)
    return digest


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
            self.select_related("farm", "network__kernel", "kernel_override")
            .filter(mac=normalise_mac(mac))
            .first()
        )

    def pending(self) -> NodeQuerySet:
        return self.filter(Q(farm__isnull=True) | Q(network__isnull=True))


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

    @property
    def kernel(self) -> Kernel | None:
        if self.kernel_override_id:
            return self.kernel_override
        return self.network.kernel if self.network_id else None


class BootEvent(models.Model):
    """One thing served to a node: a script or a kernel download. Answers "who runs what"."""

    class Kind(models.TextChoices):
        SCRIPT = "script", "boot script"
        KERNEL = "kernel", "kernel download"
        PENDING = "pending", "waiting for approval"
        REFUSED = "refused", "refused (disabled)"

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    kind = models.CharField(max_length=8, choices=Kind.choices)
    client_ip = models.GenericIPAddressField(null=True, blank=True)
    network = models.ForeignKey(
        Network, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    farmer_id = models.PositiveBigIntegerField("farm ID", null=True, blank=True, db_index=True)
    node = models.ForeignKey(
        Node, on_delete=models.SET_NULL, null=True, blank=True, related_name="boot_events"
    )
    mac = models.CharField("MAC address", max_length=17, blank=True, db_index=True)
    kernel_name = models.CharField(max_length=200, blank=True, db_index=True)
    kernel_sha256 = models.CharField(max_length=64, blank=True)
    user_agent = models.CharField(max_length=200, blank=True)
    path = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name = "boot event"

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.kind} {self.client_ip or '-'}"


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
