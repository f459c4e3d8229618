from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from artifacts import builder, cache
from artifacts.formats import IMAGE_FORMATS, STATIC_TARGETS, BuildError
from provisioning import answers
from provisioning.models import Network
from provisioning.scripts import render_provision_chain_script


class Command(BaseCommand):
    help = (
        "Build ahead of time the static images (krn/uefi generic and provision) and each "
        "active network's plain images, so the first farmers do not wait for them."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--base-url",
            default=None,
            help="URL nodes reach the service at (default: ZOSBOOT_PUBLIC_URL). Without one, "
            "only the plain iPXE images are built.",
        )

    def handle(self, *args, base_url, **options):
        base_url = (base_url or settings.ZOSBOOT_PUBLIC_URL).rstrip("/")
        # make run calls this at every start: what a killed worker left goes now.
        if removed := cache.remove_abandoned_builds():
            self.stdout.write(f"removed {removed} build(s) abandoned by stopped workers")
        jobs: list[tuple[str, str, str]] = []
        for target, static in STATIC_TARGETS.items():
            if static.provisions and not base_url:
                continue
            script = render_provision_chain_script(base_url) if static.provisions else ""
            jobs.append((static.format, script, target))
        if base_url:
            for network in Network.objects.active():
                answer = answers.for_path(network.slug, base_url=base_url)
                if not answer.boots:
                    self.stdout.write(f"skipping {network.slug}: {answer.message}")
                    continue
                jobs += [(fmt, answer.image_script, network.slug) for fmt in IMAGE_FORMATS]
        else:
            self.stdout.write(
                "ZOSBOOT_PUBLIC_URL is not set: building only the plain iPXE images "
                "(the others are built on first request)."
            )
        built = 0
        for fmt, script, label in jobs:
            try:
                result = builder.get_or_build(fmt, script, label=label)
            except (BuildError, builder.ImageUnavailable) as exc:
                raise CommandError(f"{fmt} for {label}: {exc}") from exc
            built += result.built
        self.stdout.write(self.style.SUCCESS(f"{len(jobs)} image(s) ready, {built} built now"))
