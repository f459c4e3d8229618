"""Django's migrate, whose `--check` says in one line what is wrong and what to do.

`migrate --check` is in the start path of every server (setup/serve.sh, the systemd unit): a
release started on a database its migrations have not reached refuses to serve, instead of
failing request by request on a missing column.
"""

from __future__ import annotations

from django.core.management.base import CommandError
from django.core.management.commands.migrate import Command as MigrateCommand
from django.db import connections
from django.db.migrations.executor import MigrationExecutor


class Command(MigrateCommand):
    def handle(self, *args, **options):
        if not options["check_unapplied"]:
            return super().handle(*args, **options)
        connection = connections[options["database"]]
        executor = MigrationExecutor(connection)
        plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
        if plan:
            names = [f"{migration.app_label}.{migration.name}" for migration, _ in plan]
            shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
            raise CommandError(
                f"the database ({connection.settings_dict['NAME']}) lacks {len(names)} "
                f"migration(s) of this release ({shown}); refusing to serve on it. Apply them "
                "once with `manage.py migrate` (on one instance, before starting the others; "
                "README: Upgrading), then start again."
            )
        if options["verbosity"] >= 1:
            self.stdout.write("The database has every migration of this release.")
