"""Kernel files: the store they live in and what the service knows of each."""

from __future__ import annotations

import os

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.storage import FileSystemStorage
from django.db import models
from django.utils import timezone
from django.utils.deconstruct import deconstructible

from ..digests import sha256_stream
from ..validators import validate_kernel_name


@deconstructible(path="provisioning.models.KernelStorage")
class KernelStorage(FileSystemStorage):
    """The kernel store. Its location is read from settings at every use (not once at import),
    so `ZOSBOOT_KERNELS_DIR` and overrides of it always apply."""

    @property
    def base_location(self) -> str:
        return str(settings.ZOSBOOT_KERNELS_DIR)

    @property
    def location(self) -> str:
        return os.path.abspath(self.base_location)


class Arch(models.TextChoices):
    """The machine architectures a kernel is built for, as Debian names them."""

    AMD64 = "amd64", "amd64 (x86-64)"
    ARM64 = "arm64", "arm64 (AArch64)"


#: What the kernel headers say, read from the first bytes of the file: an arm64 Linux Image
#: has the magic "ARMd" at 0x38, an x86 bzImage "HdrS" at 0x202 (both boot protocols'
#: documented headers; Zero-OS kernels are such EFI-stub images).
_ARCH_MAGICS = ((0x38, b"ARMd", Arch.ARM64), (0x202, b"HdrS", Arch.AMD64))
ARCH_HEADER_BYTES = 0x206


def detect_arch(head: bytes) -> Arch | None:
    """The architecture a kernel file's header names, from its first ARCH_HEADER_BYTES
    bytes; None when it is neither kind of image (a test file, a format not known here)."""
    for offset, magic, arch in _ARCH_MAGICS:
        if head[offset : offset + len(magic)] == magic:
            return arch
    return None


def arch_mismatch(name: str, declared: str, detected: str | None) -> ValidationError | None:
    """The refusal when a file's header says another architecture than the one declared."""
    if detected is None or detected == declared:
        return None
    return ValidationError(
        f"{name} is an {detected} kernel (its header says so), not {declared}",
        code="arch_mismatch",
    )


def kernel_upload_to(instance: Kernel, filename: str) -> str:
    # The kernel's name is validated to be a plain file name; the uploaded name is ignored.
    return instance.name


#: What a kernel is, fixed when it is registered: the bytes nodes boot (file, sha256, size),
#: the machines they are for and the name they are served at.
IMMUTABLE_FIELDS = ("name", "file", "sha256", "size", "arch")


class ImmutableKernel(ValidationError):
    """An attempt to change what a registered kernel is; said to whoever tried."""

    def __init__(self, name: str, fields: list[str]) -> None:
        super().__init__(
            f"kernel {name} cannot change its {', '.join(fields)}: a kernel's bytes, "
            "architecture and name never change once registered, because nodes, edges and "
            "caches rely on them; register the new build as a new kernel",
            code="immutable",
        )


class KernelQuerySet(models.QuerySet):
    def update(self, **kwargs):
        """Bulk updates may touch notes and signatures only (see IMMUTABLE_FIELDS)."""
        changed = sorted(set(kwargs) & {*IMMUTABLE_FIELDS, "file_id"})
        if changed:
            raise ImmutableKernel("(bulk update)", changed)
        return super().update(**kwargs)

    def unused(self) -> KernelQuerySet:
        """Kernels no network, branch link, node or undecided switch points at."""
        from .switches import PendingSwitch

        waiting = PendingSwitch.objects.filter(
            kernel=models.OuterRef("pk"), state=PendingSwitch.State.PENDING
        )
        return self.filter(
            networks=None, networks_arm64=None, links=None, overriding_nodes=None
        ).exclude(models.Exists(waiting))


class Kernel(models.Model):
    """A Zero-OS kernel file (an EFI-stub bzImage with its initramfs) that nodes can boot.

    Immutable once registered: its file, sha256, size, architecture and name never change
    (`save()` refuses, and so does a trigger in the database for any other path), so
    `/kernel/sha256/<hex>` and every name it was served at always mean the same bytes. A new
    build is a new kernel. Only the notes and the release signature may change (a signature
    that verifies replaces one that does not, recorded as a KernelRecord).
    """

    name = models.CharField(
        max_length=200,
        unique=True,
        validators=[validate_kernel_name],
        help_text="File name nodes download it as, e.g. zero-os-development-amd64.efi.",
    )
    file = models.FileField(storage=KernelStorage(), upload_to=kernel_upload_to, max_length=255)
    sha256 = models.CharField(max_length=64, editable=False, blank=True, db_index=True)
    size = models.PositiveBigIntegerField(editable=False, default=0)
    arch = models.CharField(
        "architecture",
        max_length=8,
        choices=Arch.choices,
        default=Arch.AMD64,
        help_text="The machines it is built for. A network boots one kernel per architecture.",
    )
    uploaded_at = models.DateTimeField(default=timezone.now, editable=False)
    notes = models.TextField(blank=True)
    # The release signature (ssh-keygen -Y sign, provisioning/signatures.py) and who signed
    # it, as checked when it was given; networks that need one check it again at each switch.
    signature = models.TextField(blank=True, editable=False)
    signer = models.CharField(max_length=200, blank=True, editable=False)

    objects = KernelQuerySet.as_manager()

    class Meta:
        ordering = ["-uploaded_at", "name"]
        verbose_name = "kernel"

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs) -> None:
        if self.pk is None or self._state.adding:
            if self.file and not self.sha256:
                # Hashing streams, it never loads the file.
                self.sha256, self.size = hash_file(self.file)
            if self.file and self.size == 0:
                raise ValidationError(f"{self.name} is empty: a kernel has bytes", code="empty")
        else:
            self._refuse_changes(kwargs.get("update_fields"))
        super().save(*args, **kwargs)

    def _refuse_changes(self, update_fields) -> None:
        fields = [
            field for field in IMMUTABLE_FIELDS
            if update_fields is None or field in update_fields
        ]  # fmt: skip
        if not fields:
            return
        saved = Kernel.objects.filter(pk=self.pk).values(*fields).first()
        if saved is None:
            return
        mine = {
            field: self.file.name if field == "file" else getattr(self, field)
            for field in fields
        }  # fmt: skip
        changed = [field for field in fields if saved[field] != mine[field]]
        if self.file and not getattr(self.file, "_committed", True) and "file" not in changed:
            changed.append("file")  # a new upload assigned under the same name
        if changed:
            raise ImmutableKernel(saved.get("name", self.name), changed)

    @property
    def download_path(self) -> str:
        return f"/kernel/{self.name}"

    @property
    def content_path(self) -> str:
        """Its content address: the same bytes forever, cacheable anywhere."""
        return f"/kernel/sha256/{self.sha256}"

    @property
    def signature_label(self) -> str:
        if not self.signature:
            return "unsigned"
        return f"signed by {self.signer}" if self.signer else "signed (signer not checked)"

    def detected_arch(self) -> Arch | None:
        """The architecture the file's header names (None: unknown, or no file)."""
        if not self.file:
            return None
        try:
            self.file.open("rb")
            try:
                self.file.seek(0)
                head = self.file.read(ARCH_HEADER_BYTES)
                self.file.seek(0)
            finally:
                if getattr(self.file, "_committed", True):
                    self.file.close()
        except OSError:
            return None
        return detect_arch(head)

    def check_arch(self, arch: str) -> None:
        """Raise ValidationError unless this kernel can be what `arch` machines boot: its
        recorded architecture, and its file's header when that says one."""
        if self.arch != arch:
            raise ValidationError(
                f"{self.name} is an {self.arch} kernel; {arch} machines cannot boot it",
                code="arch_mismatch",
            )
        refusal = arch_mismatch(self.name, arch, self.detected_arch())
        if refusal is not None:
            raise refusal


class KernelRecord(models.Model):
    """What happened to a kernel itself: registered, given or re-given its release signature,
    removed. Read-only once written; kept when the kernel is gone."""

    class Action(models.TextChoices):
        REGISTERED = "registered", "registered"
        SIGNATURE = "signature", "signature replaced"
        SIGNED = "signed", "signature added"
        REMOVED = "removed", "removed"

    kernel = models.ForeignKey(
        Kernel, on_delete=models.SET_NULL, null=True, blank=True, related_name="records"
    )
    kernel_name = models.CharField(max_length=200, db_index=True)
    sha256 = models.CharField(max_length=64)
    action = models.CharField(max_length=16, choices=Action.choices)
    at = models.DateTimeField(default=timezone.now, db_index=True)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    changed_via = models.CharField(
        max_length=120, blank=True, help_text="The API token, command or import that did it."
    )
    note = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-at", "-pk"]
        verbose_name = "kernel record"

    def __str__(self) -> str:
        return f"{self.kernel_name}: {self.get_action_display()}"

    @classmethod
    def note_for(cls, kernel: Kernel, action: str, *, user=None, via: str = "", note: str = ""):
        return cls.objects.create(
            kernel=kernel if action != cls.Action.REMOVED else None,
            kernel_name=kernel.name,
            sha256=kernel.sha256,
            action=action,
            changed_by=user if user is not None and user.is_authenticated else None,
            changed_via=via[:120],
            note=note[:300],
        )


def hash_file(fileobj) -> tuple[str, int]:
    fileobj.seek(0)
    digest = sha256_stream(fileobj)
    fileobj.seek(0)
    return digest
