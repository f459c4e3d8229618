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

    @property
    def signature_label(self) -> str:
        if not self.signature:
            return "unsigned"
        return f"signed by {self.signer}" if self.signer else "signature not checked"

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


def hash_file(fileobj) -> tuple[str, int]:
    fileobj.seek(0)
    digest = sha256_stream(fileobj)
    fileobj.seek(0)
    return digest
