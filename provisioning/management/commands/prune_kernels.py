from django.core.management.base import BaseCommand
from django.db.models import ProtectedError

from provisioning import kernels, store


class Command(BaseCommand):
    help = (
        "Remove kernels nothing uses: no network, branch link, node or undecided switch points "
        "at them, no network would roll back to them, and no node booted them in the last "
        "--days (default: ZOSBOOT_BOOT_HISTORY_DAYS). Their files leave the store; a kernel "
        "record stays. Also removes abandoned uploads."
    )

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, default=None)
        parser.add_argument("--dry-run", action="store_true", help="only say what would go")

    def handle(self, *args, days, dry_run, **options):
        swept = [] if dry_run else store.sweep_incoming()
        if swept:
            self.stdout.write(f"Removed {len(swept)} abandoned upload(s) from .incoming")
        removed = freed = 0
        for verdict in store.prunable(days):
            kernel = verdict.kernel
            if not verdict.removable:
                self.stdout.write(f"Keeping {kernel.name}: {verdict.reason}")
                continue
            if not dry_run:
                try:
                    kernels.remove(kernel, via="manage.py prune_kernels", note="unused")
                except ProtectedError:
                    self.stdout.write(f"Keeping {kernel.name}: a four-eyes switch names it")
                    continue
            removed += 1
            freed += kernel.size
            verb = "Would remove" if dry_run else "Removed"
            self.stdout.write(f"{verb} {kernel.name} ({kernel.size} bytes)")
        verb = "Would remove" if dry_run else "Removed"
        self.stdout.write(self.style.SUCCESS(f"{verb} {removed} unused kernel(s), {freed} bytes"))
