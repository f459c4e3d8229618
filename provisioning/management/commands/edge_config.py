from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from provisioning import frontserver


class Command(BaseCommand):
    requires_system_checks = []  # it only renders text

    help = (
        "Print the nginx site config of an edge in front of this service (the one "
        "setup/edge.sh runs): kernels kept by content address, the last good answer of every "
        "script when the origin fails, nothing else exposed. For an nginx ops run themselves."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--origin",
            default=None,
            help="The origin's base URL the edge asks (default: ZOSBOOT_PUBLIC_URL).",
        )
        parser.add_argument("--listen", default="0.0.0.0:80", help="The edge's listen address.")
        parser.add_argument(
            "--edge-dir", default="/var/cache/zosboot-edge", help="Cache, run and log directory."
        )
        parser.add_argument(
            "--cache-bytes", type=int, default=20 * 1024**3, help="Size of the file cache."
        )
        parser.add_argument(
            "--stale-hours",
            type=int,
            default=72,
            help="How long the last good answer is served when the origin fails.",
        )

    def handle(self, *args, origin, listen, edge_dir, cache_bytes, stale_hours, **options):
        origin = origin or settings.ZOSBOOT_PUBLIC_URL
        if not origin:
            raise CommandError("give --origin (ZOSBOOT_PUBLIC_URL is not set)")
        try:
            config = frontserver.edge_config(origin, listen, edge_dir, cache_bytes, stale_hours)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(config)
