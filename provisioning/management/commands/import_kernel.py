from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from provisioning.kernels import KernelConflict, register
from provisioning.models import Arch, Network

#: How the audit trails name this command's registrations and switches.
VIA = "manage.py import_kernel"


class Command(BaseCommand):
    help = (
        "Register a kernel file: copy it into the kernel store, hash it, and optionally point "
        "networks at it (their pointer for the kernel's architecture)."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path, help="the kernel file (an EFI bzImage)")
        parser.add_argument("--name", help="name nodes download it as (default: the file name)")
        parser.add_argument(
            "--network",
            action="append",
            default=[],
            metavar="SLUG",
            help="point this network at the kernel (repeatable)",
        )
        parser.add_argument(
            "--arch",
            choices=Arch.values,
            help="what the kernel is built for (default: what its header says, else amd64); "
            "the networks' pointer for that architecture is switched",
        )
        parser.add_argument("--notes", default="", help="free text shown in the admin")
        parser.add_argument(
            "--signature",
            type=Path,
            metavar="FILE.sig",
            help="its release signature (ssh-keygen -Y sign -n zosboot-kernel), checked against "
            "ZOSBOOT_RELEASE_SIGNERS before the kernel is registered",
        )

    def handle(self, *args, file: Path, name, network, notes, arch=None, signature=None, **options):
        if not file.is_file():
            raise CommandError(f"{file} is not a file")
        if signature is not None and not signature.is_file():
            raise CommandError(f"{signature} is not a file")
        networks = []
        for slug in network:
            found = Network.objects.filter(slug=slug).first()
            if found is None:
                raise CommandError(f"unknown network {slug!r}")
            networks.append(found)
        try:
            kernel, created = register(
                file, name, notes=notes, arch=arch, via=VIA,
                signature=signature.read_bytes()[:65536] if signature else None,
            )  # fmt: skip
        except ValidationError as exc:
            raise CommandError(exc.messages[0]) from None
        except KernelConflict as exc:
            raise CommandError(str(exc)) from None
        verb = "Registered" if created else "Already registered"
        self.stdout.write(
            self.style.SUCCESS(
                f"{verb} {kernel.name} ({kernel.arch}, {kernel.size} bytes, "
                f"sha256 {kernel.sha256}, {kernel.signature_label})"
            )
        )
        arch = arch or kernel.arch
        machines = "" if arch == Arch.AMD64 else f" on {arch} machines"
        for net in networks:
            try:
                change = net.switch_kernel(kernel, note="import_kernel", arch=arch, via=VIA)
            except ValidationError as exc:
                raise CommandError(exc.messages[0]) from None
            if change:
                self.stdout.write(
                    self.style.SUCCESS(
                        f"{net.slug} now boots {kernel.name}{machines} "
                        f"(was {change.previous_name or 'nothing'})"
                    )
                )
            else:
                self.stdout.write(f"{net.slug} already boots {kernel.name}{machines}")
