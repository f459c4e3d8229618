"""Every directory the settings name works under `make run` (setup/serve.sh), as root too: made
when missing, given to the service user, and one line naming it and the fix when it cannot be."""

from __future__ import annotations

import os
import pwd
import subprocess

import pytest
from django.core.management import call_command
from django.db import connection

from provisioning.tests.stack import REPO, running_stack, sparse_kernel, stack_env

as_root = pytest.mark.skipif(os.geteuid() != 0, reason="the service user exists for root only")


def test_service_dirs_names_every_directory_and_merges_nested_writable_ones(
    settings, tmp_path, capsys
):
    settings.ZOSBOOT_DATA_DIR = tmp_path / "data"
    settings.ZOSBOOT_RUN_DIR = tmp_path / "data" / "run"
    settings.ZOSBOOT_METRICS_DIR = tmp_path / "data" / "run" / "metrics"
    settings.ZOSBOOT_EDGE_DIR = str(tmp_path / "edge")
    call_command("service_dirs")
    listed = {
        line.split("\t")[0]: line.split("\t")[1:]
        for line in capsys.readouterr().out.split("\n")
        if line
    }
    assert listed["ZOSBOOT_ARTIFACTS_DIR"] == ["rw", str(tmp_path / "artifacts")]
    assert listed["ZOSBOOT_IPXE_DIR"][0] == "r"
    assert listed["ZOSBOOT_EDGE_DIR"] == ["rw", str(tmp_path / "edge")]
    assert {"ZOSBOOT_KERNELS_DIR", "ZOSBOOT_RUN_DIR", "ZOSBOOT_METRICS_DIR"} <= listed.keys()
    assert "ZOSBOOT_STATIC_ROOT" in listed
    # The SQLite file's directory; a database server's files are not the service's.
    assert ("DATABASE_URL" in listed) == (connection.vendor == "sqlite")
    call_command("service_dirs", "--writable")
    writable = capsys.readouterr().out.split()
    assert str(tmp_path / "data") in writable and str(tmp_path / "data" / "run") not in writable
    assert str(tmp_path / "artifacts") in writable and str(tmp_path / "edge") in writable


@pytest.mark.stack
def test_make_run_serves_with_the_image_cache_and_the_database_on_another_disk(tmp_path, ipxe_dir):
    elsewhere = tmp_path / "disk2"  # not there yet: serve.sh makes what the settings name
    settings = {
        "ZOSBOOT_ARTIFACTS_DIR": str(elsewhere / "cache"),
        "DATABASE_URL": f"sqlite:///{elsewhere}/db/zosboot.sqlite3",
        "ZOSBOOT_EDGE_DIR": str(elsewhere / "edge"),
    }
    with running_stack(tmp_path / "box", ipxe_dir, **settings) as stack:
        kernel = sparse_kernel(tmp_path / "zero-os-disk2.efi", size=1024 * 1024)
        stack.manage("import_kernel", str(kernel), "--network", "prod")
        status, _, body = stack.get("/ipxe/prod/1234")
        assert status == 200 and b"zero-os-disk2.efi" in body
        status, _, image = stack.get("/krn/prod/1234", timeout=120)
        assert status == 200 and len(image) > 100_000
        assert list((elsewhere / "cache").iterdir()), "the image went to the configured cache"
        assert (elsewhere / "db" / "zosboot.sqlite3").stat().st_size > 0
        assert not (tmp_path / "box" / "data" / "zosboot.sqlite3").exists()
        if os.geteuid() == 0:
            for path in (elsewhere / "cache", elsewhere / "db", elsewhere / "edge"):
                assert pwd.getpwuid(path.stat().st_uid).pw_name == "zosboot", path


@pytest.mark.stack
@as_root
def test_a_read_only_cache_directory_stops_make_run_with_one_line_naming_it_and_the_fix(
    tmp_path, ipxe_dir
):
    cache = tmp_path / "ro-cache"
    cache.mkdir()
    env = stack_env(tmp_path / "box", ipxe_dir, ZOSBOOT_ARTIFACTS_DIR=str(cache))
    # A read-only mount of its own, in a mount namespace that ends with the command.
    script = (
        f"mount --bind {cache} {cache} && mount -o remount,bind,ro {cache} && "
        f"exec bash {REPO}/setup/serve.sh"
    )
    result = subprocess.run(
        ["unshare", "--mount", "sh", "-c", script],
        env=env, cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    # Before it, only what serve.sh did on the way (the passage it granted); no traceback.
    *before, error = result.stderr.strip().splitlines()
    assert all(line.startswith("serve: letting zosboot pass") for line in before), before
    assert error.startswith(f"serve: ZOSBOOT_ARTIFACTS_DIR: cannot give {cache} to zosboot")
    assert "mount it read-write or set ZOSBOOT_ARTIFACTS_DIR" in error
