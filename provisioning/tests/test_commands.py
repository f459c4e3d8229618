import hashlib
import sqlite3
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from provisioning.models import (
    BootEvent,
    BranchLink,
    Farm,
    Kernel,
    KernelChange,
    LinkChange,
    Network,
    Node,
)

pytestmark = pytest.mark.django_db


def test_import_kernel_copies_hashes_and_points_networks(tmp_path, settings):
    source = tmp_path / "build" / "zero-os-development-amd64.efi"
    source.parent.mkdir()
    source.write_bytes(b"MZ kernel")
    call_command("import_kernel", str(source), "--network", "prod", "--network", "test")
    kernel = Kernel.objects.get(name="zero-os-development-amd64.efi")
    assert kernel.sha256 == hashlib.sha256(b"MZ kernel").hexdigest()
    assert (settings.ZOSBOOT_KERNELS_DIR / kernel.name).read_bytes() == b"MZ kernel"
    assert set(Network.objects.filter(kernel=kernel).values_list("slug", flat=True)) == {
        "prod",
        "test",
    }
    assert KernelChange.objects.filter(note="import_kernel").count() == 2


def test_import_kernel_twice_is_a_no_op_and_a_different_file_is_refused(tmp_path):
    source = tmp_path / "k.efi"
    source.write_bytes(b"one")
    call_command("import_kernel", str(source), "--name", "zos.efi")
    call_command("import_kernel", str(source), "--name", "zos.efi")
    assert Kernel.objects.count() == 1
    source.write_bytes(b"two")
    with pytest.raises(CommandError, match="exists with other content"):
        call_command("import_kernel", str(source), "--name", "zos.efi")


@pytest.mark.parametrize(
    "args,message",
    [(["--name", "../x"], "kernel name"), (["--network", "nowhere"], "unknown network")],
)
def test_import_kernel_refuses_bad_input(tmp_path, args, message):
    source = tmp_path / "k.efi"
    source.write_bytes(b"k")
    with pytest.raises(CommandError, match=message):
        call_command("import_kernel", str(source), *args)


def _legacy_install(root):
    kernels = root / "kernel"
    (kernels / "net").mkdir(parents=True)
    (kernels / "zero-os-v3-a.efi").write_bytes(b"a")
    (kernels / "zero-os-v3-b.efi").write_bytes(b"b")
    (kernels / "net" / "prod.efi").symlink_to("../zero-os-v3-a.efi")
    (kernels / "net" / "test.efi").symlink_to("../zero-os-v3-b.efi")
    (kernels / "net" / "qa.efi").symlink_to("../gone.efi")
    db_path = root / "bootstrap.sqlite3"
    db = sqlite3.connect(db_path)
    db.execute(
        "CREATE TABLE provision (client varchar(32) primary key, branch varchar(256), "
        "zerotier varchar(32), kargs text)"
    )
    db.executemany(
        "INSERT INTO provision VALUES (?, ?, ?, ?)",
        [
            ("52:54:00:AA:BB:01", "prod", "1234", "console=ttyS0"),
            ("525400aabb02", "test", "", ""),
            ("not-a-mac", "prod", "1", ""),
            ("52:54:00:aa:bb:03", "prod", "1", "a && shell"),
            ("52:54:00:aa:bb:04", "mars", "1", ""),
        ],
    )
    db.commit()
    db.close()
    return kernels, db_path


def test_import_legacy_brings_kernels_links_and_nodes_and_is_idempotent(tmp_path, capsys):
    kernels, db_path = _legacy_install(tmp_path)
    for _ in range(2):
        call_command("import_legacy", "--kernel-dir", str(kernels), "--provision-db", str(db_path))
    assert set(Kernel.objects.values_list("name", flat=True)) == {
        "zero-os-v3-a.efi",
        "zero-os-v3-b.efi",
    }
    assert Network.objects.get(slug="prod").kernel.name == "zero-os-v3-a.efi"
    assert Network.objects.get(slug="test").kernel.name == "zero-os-v3-b.efi"
    assert Network.objects.get(slug="qa").kernel is None
    assert KernelChange.objects.count() == 2
    node = Node.objects.get(mac="52:54:00:aa:bb:01")
    assert (node.network.slug, node.farm.farmer_id, node.extra_args) == (
        "prod",
        1234,
        "console=ttyS0",
    )
    pending_farm = Node.objects.get(mac="52:54:00:aa:bb:02")
    assert pending_farm.farm is None and pending_farm.network.slug == "test"
    assert Node.objects.count() == 2
    assert Farm.objects.count() == 1
    err = capsys.readouterr().err
    assert "not-a-mac" in err and "a && shell" not in err.replace("'a && shell'", "")
    assert "unknown network 'mars'" in err
    assert "dangling" in err


def test_import_legacy_with_release_column(tmp_path):
    kernels, _ = _legacy_install(tmp_path)
    db_path = tmp_path / "old.sqlite3"
    db = sqlite3.connect(db_path)
    db.execute("CREATE TABLE provision (client, release, zerotier, kargs)")
    db.execute("INSERT INTO provision VALUES ('52:54:00:aa:bb:09', 'dev', '9', '')")
    db.commit()
    db.close()
    call_command("import_legacy", "--kernel-dir", str(kernels), "--provision-db", str(db_path))
    assert Node.objects.get().network.slug == "dev"


def test_import_legacy_refuses_a_database_without_provision_table(tmp_path):
    kernels, _ = _legacy_install(tmp_path)
    empty = tmp_path / "empty.sqlite3"
    sqlite3.connect(empty).close()
    with pytest.raises(CommandError, match="no provision table"):
        call_command("import_legacy", "--kernel-dir", str(kernels), "--provision-db", str(empty))


def test_prune_boot_history_by_age(capsys):
    old = BootEvent.objects.create(kind="script")
    BootEvent.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=100))
    BootEvent.objects.create(kind="script")
    call_command("prune_boot_history", "--days", "90", "--dry-run")
    assert BootEvent.objects.count() == 2
    assert "Would delete 1" in capsys.readouterr().out
    call_command("prune_boot_history", "--days", "90")
    assert BootEvent.objects.count() == 1


def test_import_legacy_keeps_branch_links_and_the_chains_through_them(tmp_path, client):
    kernels, _ = _legacy_install(tmp_path)
    # The old layout: top-level links name the newest build of a branch, and a network
    # link may point at such a link (net/dev.efi -> ../zero-os-development-generic.efi).
    (kernels / "zero-os-development-generic.efi").symlink_to("zero-os-v3-b.efi")
    (kernels / "net" / "dev.efi").symlink_to("../zero-os-development-generic.efi")
    for _ in range(2):
        call_command("import_legacy", "--kernel-dir", str(kernels))
    link = BranchLink.objects.get(name="zero-os-development-generic.efi")
    assert link.kernel.name == "zero-os-v3-b.efi"
    assert LinkChange.objects.filter(link=link).count() == 1  # the rerun changed nothing
    dev = Network.objects.get(slug="dev")
    assert dev.link == link and dev.kernel is None
    assert Network.objects.get(slug="prod").link is None  # pinned, as it was
    # /kernel/<link> answers, and dev follows the link when it moves.
    assert client.get("/kernel/zero-os-development-generic.efi").status_code == 200
    link.point(link.name, Kernel.objects.get(name="zero-os-v3-a.efi"))
    assert b"kernel=zero-os-v3-a.efi" in client.get("/ipxe/dev/1").content
