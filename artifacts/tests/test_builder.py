"""The cache and the builder: one build per key, bounded builds, atomic files, eviction."""

import hashlib
import multiprocessing
import threading
from pathlib import Path

import pytest

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
    def full(script, dest, workdir, tc):
        raise OSError(28, "No space left on device")

    monkeypatch.setitem(
        FORMATS, "krn", FORMATS["krn"].__class__(**{**FORMATS["krn"].__dict__, "build": full})
    )
    with pytest.raises(BuildError, match="No space left"):
        builder.get_or_build("krn", SCRIPT)


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
