"""The configuration generation: one stamp that moves with every change of what scripts are
made of, so each worker knows when its copy is stale."""

from __future__ import annotations

import secrets

from django.db import models


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
