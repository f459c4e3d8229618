"""Keep the kernel store in step with the database."""

from django.db.models.signals import post_delete
from django.dispatch import receiver

from .models import Kernel


@receiver(post_delete, sender=Kernel)
def remove_kernel_file(sender, instance: Kernel, **kwargs) -> None:
    # Only reached when no network or node points at the kernel (PROTECT refuses otherwise).
    if instance.file:
        instance.file.delete(save=False)
