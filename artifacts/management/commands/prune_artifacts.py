from django.conf import settings
from django.core.management.base import BaseCommand

from artifacts import builder, cache
from artifacts.models import Artifact


class Command(BaseCommand):
    help = (
        "Shrink the image cache to --max-bytes (default ZOSBOOT_ARTIFACTS_MAX_BYTES), least "
        "recently served first; remove files the database does not know and the build "
        "directories of killed workers. --all empties the cache."
    )

    def add_arguments(self, parser):
        parser.add_argument("--max-bytes", type=int, default=None)
        parser.add_argument("--all", action="store_true", help="remove every cached image")
        parser.add_argument("--dry-run", action="store_true", help="only report")

    def handle(self, *args, max_bytes, dry_run, **options):
        limit = (
            0
            if options["all"]
            else settings.ZOSBOOT_ARTIFACTS_MAX_BYTES
            if max_bytes is None
            else max_bytes
        )
        evicted = builder.evict_to(limit, dry_run=dry_run)
        verb = "Would remove" if dry_run else "Removed"
        freed = sum(artifact.size for artifact in evicted)
        self.stdout.write(self.style.SUCCESS(f"{verb} {len(evicted)} image(s), {freed} bytes"))
        known = set(Artifact.objects.values_list("key", flat=True))
        swept = cache.sweep(known, dry_run=dry_run)
        self.stdout.write(
            self.style.SUCCESS(f"{verb} {len(swept)} stray file(s) and abandoned build(s)")
        )
