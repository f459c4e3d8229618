import shutil
import time

from django.conf import settings
from django.core.management.base import BaseCommand

from artifacts import builder, cache
from artifacts.models import Artifact

STALE_SECONDS = 3600


class Command(BaseCommand):
    help = (
        "Shrink the image cache to --max-bytes (default ZOSBOOT_ARTIFACTS_MAX_BYTES), least "
        "recently served first; remove files the database does not know and stale build "
        "leftovers. --all empties the cache."
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
        strays = self.strays()
        for path in strays:
            if not dry_run:
                if path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    cache.remove(path)
        self.stdout.write(self.style.SUCCESS(f"{verb} {len(strays)} stray file(s)"))

    def strays(self):
        root = cache.root()
        if not root.is_dir():
            return []
        known = set(Artifact.objects.values_list("key", flat=True))
        old = time.time() - STALE_SECONDS
        found = []
        for shard in root.iterdir():
            if shard.name == "tmp":
                found += [p for p in shard.iterdir() if p.stat().st_mtime < old]
            elif shard.name == "locks":
                found += [
                    p
                    for p in shard.glob("*.lock")
                    if not p.name.startswith("slot-")
                    and p.stem not in known
                    and p.stat().st_mtime < old
                ]
            elif shard.is_dir() and len(shard.name) == 2:
                found += [p for p in shard.iterdir() if p.name.split(".")[0] not in known]
        return found
