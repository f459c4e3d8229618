from __future__ import annotations

from django.core.management.base import BaseCommand

from provisioning import deployment


class Command(BaseCommand):
    requires_system_checks = []  # it only names directories; setup/serve.sh prepares them

    help = (
        "List the directories this deployment's settings name, one a line: the setting, rw "
        "(the service writes there) or r (reads), the absolute path. With --writable, only the "
        "paths the service writes, none inside another (a systemd unit's ReadWritePaths=)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--writable", action="store_true", help="Only the writable paths, nested ones merged."
        )

    def handle(self, *args, writable, **options):
        dirs = deployment.directories()
        if writable:
            for path in deployment.outermost(d.path for d in dirs if d.writable):
                self.stdout.write(str(path))
            return
        for d in dirs:
            self.stdout.write(f"{d.setting}\t{'rw' if d.writable else 'r'}\t{d.path}")
