from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from provisioning import backups


class Command(BaseCommand):
    help = (
        "Write one archive of this install to DEST: the database (SQLite's online backup, or "
        "pg_dump's custom format), every kernel with a sha256 manifest, and the settings that "
        "shape scripts. Nodes keep booting meanwhile. `manage.py restore DEST` puts it back."
    )

    def add_arguments(self, parser):
        parser.add_argument("destination", type=Path, help="The archive to write (a tar file).")
        parser.add_argument(
            "--with-secret-key",
            action="store_true",
            help="Put the secret key in too: whoever reads the archive can then sign sessions.",
        )
        parser.add_argument(
            "--kernels-only",
            action="store_true",
            help="No database: for PostgreSQL kept by your own backups (README: Backups).",
        )

    def handle(self, *args, destination, with_secret_key, kernels_only, **options):
        if with_secret_key:
            self.stderr.write(
                self.style.WARNING(
                    f"{destination} will hold the secret key: keep it as secret as the key itself"
                )
            )
        try:
            summary = backups.backup(
                destination,
                with_secret_key=with_secret_key,
                kernels_only=kernels_only,
                say=self.stdout.write,
            )
        except backups.BackupError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"wrote {destination}: {summary.kernels} kernels ({summary.kernel_bytes} bytes)"
                + ("" if kernels_only else f" and the {summary.database} database")
            )
        )
