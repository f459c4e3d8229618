from django.conf import settings
from django.core.management.base import BaseCommand

from provisioning import history


class Command(BaseCommand):
    help = "Delete boot history older than --days (default: ZOSBOOT_BOOT_HISTORY_DAYS)."

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, default=None)
        parser.add_argument("--dry-run", action="store_true", help="only count what would go")

    def handle(self, *args, days, dry_run, **options):
        days = settings.ZOSBOOT_BOOT_HISTORY_DAYS if days is None else days
        count = history.prune(days, dry_run=dry_run)
        verb = "Would delete" if dry_run else "Deleted"
        self.stdout.write(
            self.style.SUCCESS(f"{verb} {count} boot event(s) older than {days} days")
        )
