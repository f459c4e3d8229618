from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from provisioning import legacy


class Command(BaseCommand):
    help = (
        "Import a zos_bootstrap install: every kernel file in --kernel-dir, each "
        "net/<net>.efi link as that network's kernel, and the rows of the provision table of "
        "--provision-db as nodes. Safe to run again."
    )

    def add_arguments(self, parser):
        parser.add_argument("--kernel-dir", type=Path, required=True)
        parser.add_argument("--provision-db", type=Path, help="the old bootstrap.sqlite3")

    def handle(self, *args, kernel_dir: Path, provision_db: Path | None, **options):
        try:
            legacy.import_install(kernel_dir, provision_db, self.say)
        except legacy.LegacyImportError as exc:
            raise CommandError(str(exc)) from exc

    def say(self, level: str, text: str) -> None:
        if level == legacy.WARNING:
            self.stderr.write(self.style.WARNING(text))
        elif level == legacy.SUCCESS:
            self.stdout.write(self.style.SUCCESS(text))
        else:
            self.stdout.write(text)
