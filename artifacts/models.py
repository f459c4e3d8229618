"""What the image cache holds: one row per built image, keyed like its file."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from . import cache


class Artifact(models.Model):
    """A boot image built from one script in one format, stored under its cache key."""

    key = models.CharField(max_length=64, unique=True, help_text="sha256 of every input.")
    format = models.CharField(max_length=16, db_index=True)
    extension = models.CharField(max_length=8)
    label = models.CharField(
        max_length=200, blank=True, help_text="What it was built for, e.g. prod/1234."
    )
    size = models.PositiveBigIntegerField()
    sha256 = models.CharField("output sha256", max_length=64)
    build_seconds = models.FloatField()
    created_at = models.DateTimeField(default=timezone.now)
    hits = models.PositiveIntegerField(default=0, help_text="Downloads served from the cache.")
    last_served = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-last_served"]
        verbose_name = "built image"

    def __str__(self) -> str:
        return f"{self.format} {self.label or self.key[:12]}"

    @property
    def path(self):
        return cache.path_for(self.key, self.extension)

    def delete_file(self) -> None:
        cache.remove(self.path)
