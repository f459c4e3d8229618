"""`manage.py backup` and `restore`: one archive, taken while nodes boot, restored into an empty
install that then serves the same scripts and kernels byte for byte; a damaged archive or a
non-empty install is refused before anything changes."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
import tarfile
import threading
import time

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from provisioning.models import Kernel
from provisioning.tests.postgres import a_server, scratch_database
from provisioning.tests.signing import ReleaseKey
from provisioning.tests.stack import REPO, running_stack, sparse_kernel
from provisioning.tests.tokens import same_script

MAC = "52:54:00:ab:cd:ef"


def members(archive) -> dict[str, bytes]:
    with tarfile.open(archive) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}


@pytest.mark.django_db(transaction=True)
def test_the_archive_holds_the_database_every_kernel_with_its_sha256_and_the_settings(
    make_kernel, tmp_path, settings, capsys
):
    settings.ZOSBOOT_PUBLIC_URL = "https://bootstrap.example.org"
    kernel = make_kernel("zero-os-v1.efi", b"MZ one")
    call_command("backup", str(tmp_path / "backup.tar"))
    content = members(tmp_path / "backup.tar")
    manifest = json.loads(content["manifest.json"])
    assert manifest["kernels"] == [
        {"name": "zero-os-v1.efi", "file": kernel.file.name, "size": 6,
         "sha256": hashlib.sha256(b"MZ one").hexdigest()}
    ]  # fmt: skip
    assert content[f"kernels/{kernel.file.name}"] == b"MZ one"
    if connection.vendor == "sqlite":
        assert content["database.sqlite3"].startswith(b"SQLite format 3")
    else:
        assert content["database.pgdump"].startswith(b"PGDMP")  # pg_dump's custom format
    assert "ZOSBOOT_PUBLIC_URL=https://bootstrap.example.org" in content["settings.env"].decode()
    assert "secret-key" not in content and manifest["secret_key"] is False


@pytest.mark.django_db(transaction=True)
def test_the_secret_key_goes_in_only_when_asked_and_with_a_warning(kernel, tmp_path, settings):
    err = io.StringIO()
    call_command("backup", str(tmp_path / "b.tar"), "--with-secret-key", stderr=err)
    assert "will hold the secret key" in err.getvalue()
    assert members(tmp_path / "b.tar")["secret-key"] == settings.SECRET_KEY.encode()


@pytest.mark.django_db(transaction=True)
def test_restore_refuses_an_install_that_is_not_empty(kernel, tmp_path):
    call_command("backup", str(tmp_path / "b.tar"))
    with pytest.raises(CommandError, match=r"not empty \(1 kernels.*--force"):
        call_command("restore", str(tmp_path / "b.tar"))


@pytest.mark.django_db(transaction=True)
def test_restore_refuses_a_damaged_kernel_before_changing_anything(kernel, tmp_path):
    call_command("backup", str(tmp_path / "b.tar"))
    damaged = tmp_path / "damaged.tar"
    with tarfile.open(tmp_path / "b.tar") as source, tarfile.open(damaged, "w") as target:
        for member in source.getmembers():
            data = source.extractfile(member).read()
            if member.name.startswith("kernels/"):
                data = b"MZ evil bytes"[: len(data)].ljust(len(data), b"!")
            target.addfile(member, io.BytesIO(data))
    Kernel.objects.all().delete()
    kernel.file.storage.delete(kernel.file.name)
    with pytest.raises(CommandError, match="does not match the manifest's sha256"):
        call_command("restore", str(damaged))
    assert not Kernel.objects.exists()
    assert not list(kernel.file.storage.listdir("")[1])


def sign(key: ReleaseKey, path) -> str:
    subprocess.run(
        ["ssh-keygen", "-q", "-Y", "sign", "-f", str(key.key), "-n", "zosboot-kernel", str(path)],
        check=True, capture_output=True,
    )  # fmt: skip
    signature = path.with_name(path.name + ".sig")
    signature.chmod(0o644)
    return str(signature)


class Booting(threading.Thread):
    """Nodes asking for scripts, as fast as they can, until told to stop."""

    def __init__(self, stack) -> None:
        super().__init__(daemon=True)
        self.stack, self.stop, self.answers = stack, threading.Event(), []

    def run(self) -> None:
        while not self.stop.is_set():
            for path in ("/ipxe/prod/1234", f"/provision/{MAC}"):
                asked = time.monotonic()
                status = self.stack.get(path, timeout=10)[0]
                self.answers.append((status, time.monotonic() - asked))


SERVED = [
    "/ipxe/prod/1234",
    "/ipxe/prod/77/console=ttyS0",
    f"/provision/{MAC}",
    "/kernel/net/prod.efi",
    "/kernel/zero-os-v1.efi",
    "/kernel/zero-os-v1.efi.sig",
]


@pytest.fixture(params=["sqlite", "postgresql"])
def databases(request):
    """The two installs' databases: each its own SQLite file, or two empty databases on one
    PostgreSQL server (the one the suite runs on, else a throwaway one)."""
    if request.param == "sqlite":
        yield {}, {}
        return
    with (
        a_server() as server,
        scratch_database(server, "zosboot_backup_a") as a,
        scratch_database(server, "zosboot_backup_b") as b,
    ):
        yield {"DATABASE_URL": a}, {"DATABASE_URL": b}


@pytest.mark.stack
def test_a_backup_taken_while_nodes_boot_restores_into_an_empty_install_serving_the_same_bytes(
    tmp_path, ipxe_dir, databases
):
    key = ReleaseKey.make(tmp_path / "keys")
    signers = tmp_path / "allowed_signers"
    signers.write_text(key.allowed_line())
    signers.chmod(0o644)
    shared = {
        "ZOSBOOT_PUBLIC_URL": "http://bootstrap.example.org",
        "ZOSBOOT_RELEASE_SIGNERS": str(signers),
        "ZOSBOOT_SIGNED_NETWORKS": "prod",
    }
    database_a, database_b = databases
    with running_stack(tmp_path / "a", ipxe_dir, **shared, **database_a) as a:
        kernel = sparse_kernel(tmp_path / "zero-os-v1.efi", size=32 * 1024 * 1024)
        a.manage(
            "import_kernel", str(kernel), "--signature", sign(key, kernel), "--network", "prod"
        )
        a.query(
            "from provisioning.models import Farm, Network, Node; "
            "farm = Farm.objects.create(farmer_id=77, name='restored farm'); "
            f"Node.objects.create(mac='{MAC}', farm=farm, network=Network.objects.get(slug='prod'))"
            "; print('ok')"
        )
        a.manage("create_api_token", "ci", "--scope", "publish")
        before = {path: a.get(path) for path in SERVED}
        assert all(status == 200 for status, _, _ in before.values()), before

        nodes = Booting(a)
        nodes.start()
        time.sleep(0.5)
        archive = tmp_path / "a" / "data" / "backup.tar"  # where the service user may write
        started = time.monotonic()
        a.manage("backup", str(archive))
        backup_seconds = time.monotonic() - started
        time.sleep(0.5)
        nodes.stop.set()
        nodes.join(timeout=20)
        statuses = {status for status, _ in nodes.answers}
        slowest = max(seconds for _, seconds in nodes.answers)
        assert statuses == {200} and len(nodes.answers) > 10, nodes.answers[:20]
        assert slowest < 1, (slowest, backup_seconds)

    # pg_dump's custom format, or SQLite's own file.
    expected = "database.pgdump" if database_a else "database.sqlite3"
    assert expected in members(archive)
    with running_stack(tmp_path / "b", ipxe_dir, **shared, **database_b) as b:
        b.stop()  # restore into a stopped, empty install, then start it
        printed = b.manage("restore", str(archive))
        assert "1 kernels verified against the manifest" in printed
        b.start()
        deadline = time.monotonic() + 60
        while b.get("/healthz")[0] != 200:  # nginx answers before gunicorn does
            assert time.monotonic() < deadline, b.log()[-2000:]
            time.sleep(0.2)
        for path in SERVED:
            status, headers, body = b.get(path)
            assert status == before[path][0] and same_script(body, before[path][2]), path
        assert (
            b.query("from provisioning.models import ApiToken; print(ApiToken.objects.count())")
            == "1"
        )
        again = subprocess.run(
            ["runuser", "-u", "zosboot", "--", sys.executable, "manage.py", "restore",
             str(archive)],
            env=b.env, cwd=REPO, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert again.returncode == 1 and "this install is not empty" in again.stderr
