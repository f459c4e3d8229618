"""Kernel files: the store they live in and what the service knows of each."""

from __future__ import annotations

import os

from django.conf import settings
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
