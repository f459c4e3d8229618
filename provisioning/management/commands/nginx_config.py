from django.core.management.base import BaseCommand, CommandError

from provisioning import frontserver


class Command(BaseCommand):
    requires_system_checks = []  # it only renders text; `check` judges the deployment

    help = (
        "Print the nginx site config that sends kernels and images for this deployment "
        "(X-Accel-Redirect into internal locations over ZOSBOOT_KERNELS_DIR and "
        "ZOSBOOT_ARTIFACTS_DIR), or with --embedded write the complete nginx.conf that "
        "make run starts, under ZOSBOOT_RUN_DIR, and print its path."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--listen", default="127.0.0.1:8000", help="nginx's listen address (ZOSBOOT_BIND)."
        )
        parser.add_argument(
            "--upstream",
            default="127.0.0.1:8001",
            help="Where gunicorn listens: host:port or unix:/path/to.sock.",
        )
        parser.add_argument(
            "--embedded", action="store_true", help="Write the full config of make run's nginx."
        )
        parser.add_argument(
            "--user", default=None, help="With --embedded: the user nginx's workers run as."
        )

    def handle(self, *args, listen, upstream, embedded, user, **options):
        try:
            if embedded:
                self.stdout.write(str(frontserver.write_embedded(listen, upstream, user)))
            else:
                self.stdout.write(frontserver.site_config(listen, upstream))
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
