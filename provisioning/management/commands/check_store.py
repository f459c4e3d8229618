from django.core.management.base import BaseCommand, CommandError

from provisioning import store


class Command(BaseCommand):
    help = (
        "Compare the kernel store with the database: kernels whose file is missing or whose "
        "bytes are not the registered sha256 (every file is read), and files no kernel is "
        "registered for. Exits non-zero when a kernel cannot be served right."
    )

    def handle(self, *args, **options):
        swept = store.sweep_incoming()
        if swept:
            self.stdout.write(f"Removed {len(swept)} abandoned upload(s) from .incoming")
        report = store.check()
        for line in report.lines():
            self.stdout.write(line)
        summary = (
            f"{report.checked} kernel file(s) read: {len(report.missing)} missing, "
            f"{len(report.mismatched)} changed, {len(report.orphans)} file(s) without a kernel"
        )
        if not report.serves_right:
            raise CommandError(summary)
        self.stdout.write(self.style.SUCCESS(summary))
