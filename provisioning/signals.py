"""Keep the kernel store in step with the database, and the workers' copies of what scripts
are made of (networks, kernels, farms) in step with both."""

from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from .models import BranchLink, ConfigGeneration, Farm, Kernel, Network


@receiver(post_delete, sender=Kernel)
def remove_kernel_file(sender, instance: Kernel, **kwargs) -> None:
    # Only reached when no network or node points at the kernel (PROTECT refuses otherwise),
    # and only once the deletion is committed: a rolled-back delete keeps its file.
    if instance.file:
        name = instance.file.name
        transaction.on_commit(lambda: instance.file.storage.delete(name))


@receiver(post_save, sender=Network)
@receiver(post_save, sender=Kernel)
@receiver(post_save, sender=Farm)
@receiver(post_save, sender=BranchLink)
@receiver(post_delete, sender=BranchLink)
@receiver(post_delete, sender=Network)
@receiver(post_delete, sender=Kernel)
@receiver(post_delete, sender=Farm)
def configuration_changed(sender, **kwargs) -> None:
    if kwargs.get("raw"):  # loaddata: the fixture's own rows, nothing else to touch
        return
    ConfigGeneration.bump()
