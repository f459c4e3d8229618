"""Moving a zos_bootstrap install into zosboot: its kernel files, its top-level symlinks (branch
links), its `net/<net>.efi` links (chains through a branch link kept as such) and its
`provision` table. Every step can run again: what is already here is left as it is.

`say(level, text)` reports as it goes (the command prints it); a source that cannot be read
at all is a LegacyImportError.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from pathlib import Path

from django.core.exceptions import ValidationError
from django.db import transaction

from .errors import reason
from .kernels import KernelConflict, register
from .models import BranchLink, Farm, Kernel, Network, Node
from .validators import (
    clean_kernel_args,
    normalise_mac,
    parse_farmer_id,
    validate_network_slug,
)

SUCCESS, INFO, WARNING = "success", "info", "warning"
# How the audit trail names what made the changes.
VIA = "import_legacy"
Say = Callable[[str, str], None]


class LegacyImportError(Exception):
    """The old install cannot be read (not a directory, no provision table, ...)."""


def import_install(kernel_dir: Path, provision_db: Path | None, say: Say) -> None:
    """Everything: kernels, then the network links, then the provisioned nodes."""
    if not kernel_dir.is_dir():
        raise LegacyImportError(f"{kernel_dir} is not a directory")
    if provision_db is not None and not provision_db.is_file():
        raise LegacyImportError(f"{provision_db} is not a file")
    import_kernels(kernel_dir, say)
    import_branch_links(kernel_dir, say)
    import_network_links(kernel_dir / "net", say)
    if provision_db is not None:
        import_provisioned(provision_db, say)


def import_kernels(kernel_dir: Path, say: Say) -> None:
    created = 0
    for path in sorted(kernel_dir.iterdir()):
        if path.is_symlink() or not path.is_file():
            continue  # links are pointers, handled with net/
        try:
            _, new = register(path, via=VIA)
        except ValidationError as exc:
            say(WARNING, f"skipped {path.name}: {exc.messages[0]}")
            continue
        except KernelConflict as exc:
            say(WARNING, f"skipped {path.name}: {exc}")
            continue
        created += new
    say(SUCCESS, f"Kernels: {created} imported")


def import_branch_links(kernel_dir: Path, say: Say) -> None:
    """Each top-level symlink (zero-os-development-generic.efi -> the build) as a branch link."""
    for path in sorted(kernel_dir.iterdir()):
        if not path.is_symlink():
            continue
        kernel = _kernel_behind(path, say)
        if kernel is None:
            continue
        try:
            _, change = BranchLink.point(path.name, kernel, note="import_legacy", via=VIA)
        except ValidationError as exc:
            say(WARNING, f"skipped link {path.name}: {exc.messages[0]}")
            continue
        if change is None:
            say(INFO, f"Link {path.name} already points at {kernel.name}")
        else:
            say(SUCCESS, f"Link {path.name} -> {kernel.name}")


def import_network_links(net_dir: Path, say: Say) -> None:
    """Each net/<net>.efi as the network's kernel; one that points at a top-level link keeps
    following that link, as the old chain did (net/test.efi -> ../zero-os-dev.efi -> build)."""
    if not net_dir.is_dir():
        return
    for path in sorted(net_dir.glob("*.efi")):
        slug = path.stem
        try:
            validate_network_slug(slug)
        except ValidationError:
            say(WARNING, f"skipped {path.name}: not a usable network name")
            continue
        step = path.parent / os.readlink(path) if path.is_symlink() else path
        link = None
        if step.is_symlink() and step.parent.resolve() == net_dir.parent.resolve():
            link = BranchLink.objects.filter(name=step.name).first()
        network, _ = Network.objects.get_or_create(slug=slug, defaults={"name": slug})
        # The old service had one kernel per network; it becomes the pointer of the
        # architecture the build is for (amd64 unless its header says arm64).
        try:
            if link is not None:
                arch = link.kernel.arch
                change = network.follow_link(link, note="import_legacy", via=VIA, arch=arch)
                target = f"link {link.name}"
            else:
                kernel = _kernel_behind(path, say)
                if kernel is None:
                    continue
                arch = kernel.arch
                change = network.switch_kernel(kernel, note="import_legacy", via=VIA, arch=arch)
                target = kernel.name
        except ValidationError as exc:  # e.g. a network that boots only signed kernels
            say(WARNING, f"Network {slug} left as it was: {exc.messages[0]}")
            continue
        if arch != "amd64":
            target += f" on {arch} machines"
        if change:
            say(SUCCESS, f"Network {slug} now boots {target}")
        else:
            say(INFO, f"Network {slug} already boots {target}")


def _kernel_behind(path: Path, say: Say) -> Kernel | None:
    """The kernel a link ends at, registered if it was not yet; None (and why) if unusable."""
    if not path.exists():
        say(WARNING, f"skipped {path.name}: dangling link")
        return None
    target = path.resolve()
    kernel = Kernel.objects.filter(name=target.name).first()
    if kernel is not None:
        return kernel
    try:
        return register(target, via=VIA)[0]
    except (ValidationError, KernelConflict) as exc:
        message = reason(exc)
        say(WARNING, f"skipped {path.name}: {message}")
        return None


def import_provisioned(db_path: Path, say: Say) -> None:
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        columns = [row[1] for row in db.execute("PRAGMA table_info(provision)")]
        if not columns:
            raise LegacyImportError(f"{db_path} has no provision table")
        # Releases of the old service called the network column "branch" or "release",
        # and kept the farm ID in the "zerotier" column.
        net_col = next((c for c in ("release", "branch") if c in columns), None)
        farm_col = next((c for c in ("farmer", "zerotier") if c in columns), None)
        if "client" not in columns or net_col is None:
            raise LegacyImportError(f"unexpected provision table columns: {', '.join(columns)}")
        select = ", ".join(
            ["client", net_col, farm_col or "NULL", "kargs" if "kargs" in columns else "''"]
        )
        rows = db.execute(f"SELECT {select} FROM provision").fetchall()  # noqa: S608
    except sqlite3.Error as exc:
        raise LegacyImportError(f"cannot read {db_path}: {exc}") from exc
    finally:
        db.close()
    imported = 0
    for client, net, farm, kargs in rows:
        try:
            mac = normalise_mac(str(client or ""))
            farmer_id = parse_farmer_id(str(farm or "").strip()) if farm else None
            extra = clean_kernel_args(str(kargs or ""))
        except ValidationError as exc:
            say(WARNING, f"skipped provision row {client!r}: {exc.messages[0]}")
            continue
        network = Network.objects.filter(slug=str(net or "")).first()
        if network is None:
            say(WARNING, f"skipped provision row {client!r}: unknown network {net!r}")
            continue
        with transaction.atomic():
            farm_obj = None
            if farmer_id is not None:
                farm_obj, _ = Farm.objects.get_or_create(farmer_id=farmer_id)
            Node.objects.update_or_create(
                mac=mac, defaults={"network": network, "farm": farm_obj, "extra_args": extra}
            )
        imported += 1
    say(SUCCESS, f"Nodes: {imported} imported from {db_path.name}")
