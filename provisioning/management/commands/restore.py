from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from provisioning import backups


class Command(BaseCommand):
    help = (
        "Restore an archive of `manage.py backup` into this install: every kernel is checked "
        "against the archive's sha256 manifest before anything is replaced, then the database "
        "and the kernels are put in place and migrated to this release. Refuses an install "
        "that is not empty unless --force. Stop the service first, start it afterwards."
    )

    def add_arguments(self, parser):
        parser.add_argument("source", type=Path, help="The archive `manage.py backup` wrote.")
        parser.add_argument(
            "--force",
            action="store_true",
            help="Replace the database and kernels of an install that is not empty.",
        )

    def handle(self, *args, source, force, **options):
        if not source.is_file():
            raise CommandError(f"{source} is not a file")
        try:
            summary = backups.restore(source, force=force, say=self.stdout.write)
        except backups.BackupError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"restored {summary.kernels} kernels ({summary.kernel_bytes} bytes) and the "
                f"{summary.database} database from {source}"
            )
        )
