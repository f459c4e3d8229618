import sqlite3
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from provisioning.kernels import KernelConflict, register_kernel
from provisioning.models import Farm, Kernel, Network, Node
from provisioning.validators import (
    clean_kernel_args,
    normalise_mac,
    parse_farmer_id,
    validate_kernel_name,
    validate_network_slug,
)


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
        if not kernel_dir.is_dir():
            raise CommandError(f"{kernel_dir} is not a directory")
        if provision_db is not None and not provision_db.is_file():
            raise CommandError(f"{provision_db} is not a file")
        self.import_kernels(kernel_dir)
        self.import_network_links(kernel_dir / "net")
        if provision_db is not None:
            self.import_provisioned(provision_db)

    def warn(self, message: str) -> None:
        self.stderr.write(self.style.WARNING(message))

    def import_kernels(self, kernel_dir: Path) -> None:
        created = 0
        for path in sorted(kernel_dir.iterdir()):
            if path.is_symlink() or not path.is_file():
                continue  # links are pointers, handled with net/
            try:
                _, new = register_kernel(path)
            except ValidationError as exc:
                self.warn(f"skipped {path.name}: {exc.messages[0]}")
                continue
            except KernelConflict as exc:
                self.warn(f"skipped {path.name}: {exc}")
                continue
            created += new
        self.stdout.write(self.style.SUCCESS(f"Kernels: {created} imported"))

    def import_network_links(self, net_dir: Path) -> None:
        if not net_dir.is_dir():
            return
        for link in sorted(net_dir.glob("*.efi")):
            slug = link.stem
            try:
                validate_network_slug(slug)
            except ValidationError:
                self.warn(f"skipped {link.name}: not a usable network name")
                continue
            if not link.exists():
                self.warn(f"skipped {link.name}: dangling link")
                continue
            target = link.resolve()
            kernel = Kernel.objects.filter(name=target.name).first()
            if kernel is None:
                try:
                    validate_kernel_name(target.name)
                    kernel, _ = register_kernel(target)
                except (ValidationError, KernelConflict) as exc:
                    self.warn(f"skipped {link.name}: {exc}")
                    continue
            network, _ = Network.objects.get_or_create(slug=slug, defaults={"name": slug})
            if network.switch_kernel(kernel, note="import_legacy"):
                self.stdout.write(self.style.SUCCESS(f"Network {slug} now boots {kernel.name}"))
            else:
                self.stdout.write(f"Network {slug} already boots {kernel.name}")

    def import_provisioned(self, db_path: Path) -> None:
        db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
        try:
            columns = [row[1] for row in db.execute("PRAGMA table_info(provision)")]
            if not columns:
                raise CommandError(f"{db_path} has no provision table")
            # Releases of the old service called the network column "branch" or "release",
            # and kept the farm ID in the "zerotier" column.
            net_col = next((c for c in ("release", "branch") if c in columns), None)
            farm_col = next((c for c in ("farmer", "zerotier") if c in columns), None)
            if "client" not in columns or net_col is None:
                raise CommandError(f"unexpected provision table columns: {', '.join(columns)}")
            select = ", ".join(
                ["client", net_col, farm_col or "NULL", "kargs" if "kargs" in columns else "''"]
            )
            rows = db.execute(f"SELECT {select} FROM provision").fetchall()  # noqa: S608
        except sqlite3.Error as exc:
            raise CommandError(f"cannot read {db_path}: {exc}") from exc
        finally:
            db.close()
        imported = 0
        for client, net, farm, kargs in rows:
            try:
                mac = normalise_mac(str(client or ""))
                farmer_id = parse_farmer_id(str(farm or "").strip()) if farm else None
                extra = clean_kernel_args(str(kargs or ""))
            except ValidationError as exc:
                self.warn(f"skipped provision row {client!r}: {exc.messages[0]}")
                continue
            network = Network.objects.filter(slug=str(net or "")).first()
            if network is None:
                self.warn(f"skipped provision row {client!r}: unknown network {net!r}")
                continue
            with transaction.atomic():
                farm_obj = None
                if farmer_id is not None:
                    farm_obj, _ = Farm.objects.get_or_create(farmer_id=farmer_id)
                Node.objects.update_or_create(
                    mac=mac, defaults={"network": network, "farm": farm_obj, "extra_args": extra}
                )
            imported += 1
        self.stdout.write(self.style.SUCCESS(f"Nodes: {imported} imported from {db_path.name}"))
