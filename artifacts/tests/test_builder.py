"""The cache and the builder: one build per key, bounded builds, atomic files, eviction."""

import errno
import hashlib
import io
import multiprocessing
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from django.core.management import call_command

from artifacts import builder, cache
from artifacts.formats import FORMATS, BuildError
from artifacts.models import Artifact

pytestmark = pytest.mark.django_db(transaction=True)

SCRIPT = "#!ipxe\necho cache test\n"


def test_a_miss_builds_and_the_next_request_hits(settings):
    first = builder.get_or_build("iso", SCRIPT, label="t")
    second = builder.get_or_build("iso", SCRIPT, label="t")
    assert (first.built, second.built) == (True, False)
    assert first.artifact.key == second.artifact.key
    artifact = Artifact.objects.get()
    assert artifact.hits == 1
    data = artifact.path.read_bytes()
    assert artifact.sha256 == hashlib.sha256(data).hexdigest() and artifact.size == len(data)
    assert artifact.path.is_relative_to(settings.ZOSBOOT_ARTIFACTS_DIR)


def test_key_covers_format_script_and_toolchain():
    tc = builder.toolchain()
    iso, usb = FORMATS["iso"], FORMATS["usb"]
    assert builder.cache_key(iso, b"a", tc) != builder.cache_key(iso, b"b", tc)
    assert builder.cache_key(iso, b"a", tc) != builder.cache_key(usb, b"a", tc)
    assert builder.cache_key(iso, b"a", tc) == builder.cache_key(iso, b"a", tc)


def test_same_inputs_give_byte_identical_images_after_a_purge():
    first = builder.get_or_build("usb", SCRIPT).artifact
    digest = first.sha256
    builder.purge(first)
    assert not first.path.exists()
    again = builder.get_or_build("usb", SCRIPT)
    assert again.built and again.artifact.sha256 == digest


def _count_builds(monkeypatch) -> list[str]:
    calls: list[str] = []
    real = builder._build

    def counting(fmt, script, key, tc, label):
        calls.append(key)
        return real(fmt, script, key, tc, label)

    monkeypatch.setattr(builder, "_build", counting)
    return calls


def test_concurrent_requests_for_one_new_key_build_once(monkeypatch):
    calls = _count_builds(monkeypatch)
    results, errors = [], []

    def fetch():
        try:
            results.append(builder.get_or_build("iso", "#!ipxe\necho once\n").artifact.sha256)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=fetch) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len(calls) == 1
    assert len(set(results)) == 1 and len(results) == 16


def _build_in_child(_):
    # A forked process, like a gunicorn worker: same files, its own copy of everything else
    # (with the in-memory test database, even its own database: only the files are shared).
    return builder.get_or_build("usb", "#!ipxe\necho processes\n").built


def test_concurrent_processes_build_one_key_once():
    with multiprocessing.get_context("fork").Pool(4) as pool:
        built = pool.map(_build_in_child, range(8))
    assert sum(built) == 1


def test_no_free_build_slot_means_busy_after_the_wait(settings):
    settings.ZOSBOOT_MAX_CONCURRENT_BUILDS = 1
    settings.ZOSBOOT_BUILD_WAIT_SECONDS = 0.2
    held = threading.Event()
    release = threading.Event()

    def hold_slot():
        with cache.build_slot(1, timeout=1):
            held.set()
            release.wait(5)

    holder = threading.Thread(target=hold_slot)
    holder.start()
    held.wait(5)
    try:
        with pytest.raises(builder.Busy):
            builder.get_or_build("krn", "#!ipxe\necho busy\n")
    finally:
        release.set()
        holder.join()
    assert builder.get_or_build("krn", "#!ipxe\necho busy\n").built


def test_a_failed_build_leaves_nothing_behind(monkeypatch, settings):
    def broken(script, dest, workdir, tc):
        dest.write_bytes(b"half an image")
        raise BuildError("xorriso not found (install the Debian package xorriso)")

    monkeypatch.setitem(
        FORMATS, "iso", FORMATS["iso"].__class__(**{**FORMATS["iso"].__dict__, "build": broken})
    )
    with pytest.raises(BuildError, match="xorriso"):
        builder.get_or_build("iso", SCRIPT)
    assert not Artifact.objects.exists()
    files = [p for p in Path(settings.ZOSBOOT_ARTIFACTS_DIR).rglob("*") if p.is_file()]
    assert all(p.suffix == ".lock" for p in files), files


def test_disk_errors_become_build_errors(monkeypatch):
    def denied(script, dest, workdir, tc):
        raise OSError(errno.EACCES, "Permission denied")

    monkeypatch.setitem(
        FORMATS, "krn", FORMATS["krn"].__class__(**{**FORMATS["krn"].__dict__, "build": denied})
    )
    with pytest.raises(BuildError, match="Permission denied"):
        builder.get_or_build("krn", SCRIPT)


def test_a_full_disk_is_unavailability_not_failure(monkeypatch):
    def full(script, dest, workdir, tc):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setitem(
        FORMATS, "krn", FORMATS["krn"].__class__(**{**FORMATS["krn"].__dict__, "build": full})
    )
    with pytest.raises(builder.CacheFull) as refused:
        builder.get_or_build("krn", SCRIPT)
    assert isinstance(refused.value, builder.ImageUnavailable)
    assert "No space left" in str(refused.value.__cause__)


def test_a_file_removed_behind_the_cache_is_rebuilt():
    artifact = builder.get_or_build("krn", SCRIPT).artifact
    artifact.path.unlink()
    assert builder.get_or_build("krn", SCRIPT).built


def test_eviction_removes_least_recently_served_first(settings):
    a = builder.get_or_build("krn", "#!ipxe\necho a\n").artifact
    b = builder.get_or_build("krn", "#!ipxe\necho b\n").artifact
    builder.get_or_build("krn", "#!ipxe\necho a\n")  # a is now the most recent
    evicted = builder.evict_to(a.size)
    assert [x.key for x in evicted] == [b.key]
    assert not b.path.exists() and a.path.exists()


def test_cache_size_cap_is_applied_after_each_build(settings):
    settings.ZOSBOOT_ARTIFACTS_MAX_BYTES = 1
    builder.get_or_build("krn", "#!ipxe\necho one\n")
    newest = builder.get_or_build("krn", "#!ipxe\necho two\n").artifact
    assert list(Artifact.objects.values_list("key", flat=True)) == [newest.key]


# --- litter and full disks -----------------------------------------------------------------


def _killed_worker_builds(key: str, settings) -> subprocess.Popen:
    """A worker in the middle of building `key` (its lock held, its directory half full)."""
    code = (
        "import fcntl, os, sys, time\n"
        "root = sys.argv[1]; key = sys.argv[2]\n"
        "os.makedirs(f'{root}/locks', exist_ok=True); os.makedirs(f'{root}/tmp', exist_ok=True)\n"
        "fd = os.open(f'{root}/locks/{key}.lock', os.O_RDWR | os.O_CREAT)\n"
        "fcntl.flock(fd, fcntl.LOCK_EX)\n"
        "os.makedirs(f'{root}/tmp/{key}-k1ll3d/work')\n"
        "open(f'{root}/tmp/{key}-k1ll3d/work/out.iso', 'wb').write(bytes(4 << 20))\n"
        "print('building', flush=True)\n"
        "time.sleep(60)\n"
    )
    worker = subprocess.Popen(
        [sys.executable, "-c", code, str(settings.ZOSBOOT_ARTIFACTS_DIR), key],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert worker.stdout.readline().strip() == "building"
    return worker


def test_a_killed_workers_build_directory_is_removed_and_a_live_one_is_not(settings):
    key = "ab" * 32
    worker = _killed_worker_builds(key, settings)
    litter = settings.ZOSBOOT_ARTIFACTS_DIR / "tmp" / f"{key}-k1ll3d"
    try:
        assert cache.abandoned_builds() == []  # still building: not litter
        call_command("prune_artifacts", stdout=io.StringIO())
        assert litter.is_dir()
    finally:
        worker.kill()
        worker.wait()
    assert cache.abandoned_builds() == [litter]
    out = io.StringIO()
    call_command("prune_artifacts", stdout=out)
    assert not litter.exists()
    assert "1 stray file(s) and abandoned build(s)" in out.getvalue()


def test_the_next_build_clears_what_killed_workers_left(settings):
    key = "cd" * 32
    worker = _killed_worker_builds(key, settings)
    worker.kill()
    worker.wait()
    builder.get_or_build("krn", SCRIPT)
    assert list((settings.ZOSBOOT_ARTIFACTS_DIR / "tmp").iterdir()) == []


def _failing_with(monkeypatch, fmt: str, failures: list[BaseException]):
    real = FORMATS[fmt].build

    def build(script, dest, workdir, tc):
        if failures:
            raise failures.pop(0)
        return real(script, dest, workdir, tc)

    monkeypatch.setitem(
        FORMATS, fmt, FORMATS[fmt].__class__(**{**FORMATS[fmt].__dict__, "build": build})
    )


XORRISO_FULL = BuildError(
    "xorriso failed (exit status 5): xorriso 1.5.4 : RockRidge filesystem manipulator, "
    "libburnia project.\nlibisofs: FAILURE : No space left on device"
)


def test_a_full_disk_evicts_the_least_recently_served_images_and_builds(monkeypatch):
    old = builder.get_or_build("krn", "#!ipxe\necho old\n").artifact
    recent = builder.get_or_build("krn", "#!ipxe\necho recent\n").artifact
    builder.get_or_build("krn", "#!ipxe\necho recent\n")
    _failing_with(monkeypatch, "iso", [XORRISO_FULL])
    # The disk is full until one image has gone.
    free = {"bytes": 0}
    real_purge = builder.purge

    def purge(artifact):
        real_purge(artifact)
        free["bytes"] = 1 << 40

    monkeypatch.setattr(builder, "purge", purge)
    monkeypatch.setattr(
        builder.shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(1, 1, free["bytes"])
    )
    result = builder.get_or_build("iso", SCRIPT)
    assert result.built and result.artifact.path.is_file()
    assert not Artifact.objects.filter(key=old.key).exists() and not old.path.exists()
    assert Artifact.objects.filter(key=recent.key).exists()


def test_a_disk_that_stays_full_is_a_short_503_and_the_details_go_to_the_log(
    client, prod, monkeypatch, caplog
):
    _failing_with(monkeypatch, "iso", [XORRISO_FULL, OSError(errno.ENOSPC, "No space left")])
    monkeypatch.setattr(builder.logger, "handlers", [caplog.handler])
    response = client.get("/iso/prod/1")
    assert response.status_code == 503
    assert response["Retry-After"] == "60"
    body = response.content.decode()
    assert "the image cache has no room right now, try again later" in body
    assert "xorriso" not in body and "libburnia" not in body
    assert "RockRidge" in caplog.text


def test_a_restart_clears_what_killed_workers_left(settings):
    key = "ef" * 32
    worker = _killed_worker_builds(key, settings)
    worker.kill()
    worker.wait()
    out = io.StringIO()
    call_command("prebuild_artifacts", stdout=out)  # what make run does at every start
    assert "removed 1 build(s) abandoned by stopped workers" in out.getvalue()
    assert list((settings.ZOSBOOT_ARTIFACTS_DIR / "tmp").iterdir()) == []
