from django.core.management.base import BaseCommand, CommandError

from provisioning.models import ApiToken


class Command(BaseCommand):
    help = (
        "Make an API token for automation and print it (alone on the last line; it is shown "
        "only now). Scopes: publish (upload kernels, point branch links), networks (switch "
        "and roll back networks), nodes (manage farms and nodes)."
    )

    def add_arguments(self, parser):
        parser.add_argument("name", help="who uses it, e.g. zos-ci")
        parser.add_argument(
            "--scope",
            action="append",
            required=True,
            choices=ApiToken.Scope.values,
            help="what it may do; repeat for several",
        )

    def handle(self, *args, name, scope, **options):
        try:
            token, secret = ApiToken.issue(name, scope)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        self.stderr.write(
            f"API token {token.name} ({', '.join(token.scope_list)}); keep it secret, it is "
            "not shown again:"
        )
        self.stdout.write(secret)
