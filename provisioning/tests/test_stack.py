"""The service as `make run` serves it, nginx and gunicorn for real: what a boot storm does to
it. Every test starts its own stack (setup/serve.sh) on 127.0.0.1 with its own database."""

from __future__ import annotations

import contextlib
import re
import time

import pytest

from provisioning.tests.stack import SlowReader, running_stack, sparse_kernel

pytestmark = pytest.mark.stack


@pytest.fixture
def nginx_stack(tmp_path, ipxe_dir):
    with running_stack(tmp_path, ipxe_dir) as stack:
        kernel = sparse_kernel(stack.root / "zero-os-storm.efi")
        stack.manage("import_kernel", str(kernel), "--network", "prod")
        yield stack


def test_scripts_answer_while_more_slow_kernel_readers_than_worker_threads(nginx_stack):
    # 2 workers x 8 threads: 24 stalled downloads would hold every thread if gunicorn sent
    # the bytes. nginx sends them, so the workers stay free.
    readers = [SlowReader(nginx_stack.port, "/kernel/net/prod.efi") for _ in range(24)]
    try:
        assert [reader.status for reader in readers] == [200] * 24
        status, _, body = nginx_stack.get("/ipxe/prod/1234", timeout=10)
        assert status == 200, body
        assert b"imgfetch --timeout" in body
    finally:
        for reader in readers:
            reader.close()


def test_nginx_sends_the_kernel_with_the_service_headers(nginx_stack):
    status, headers, body = nginx_stack.get("/kernel/net/prod.efi")
    assert status == 200
    assert len(body) == 64 * 1024 * 1024 and body.startswith(b"MZ zosboot test kernel")
    sha256 = nginx_stack.query(
        "from provisioning.models import Kernel; print(Kernel.objects.get().sha256)"
    )
    assert headers["ETag"] == f'"{sha256}"'
    assert headers["X-Checksum-Sha256"] == sha256
    assert headers["Content-Disposition"] == 'attachment; filename="zero-os-storm.efi"'
    assert "X-Accel-Redirect" not in headers
    status, _, body = nginx_stack.get("/kernel/net/prod.efi", **{"If-None-Match": f'"{sha256}"'})
    assert status == 304 and body == b""


def test_internal_file_locations_cannot_be_asked_for(nginx_stack):
    status, _, _ = nginx_stack.get("/_zosboot/internal/kernels/zero-os-storm.efi")
    assert status == 404


def test_a_kernel_switch_is_served_by_every_worker_at_the_next_request(nginx_stack):
    for _ in range(8):  # every worker has its copy of the network
        assert b"kernel=zero-os-storm.efi" in nginx_stack.get("/ipxe/prod/1")[2]
    newer = sparse_kernel(nginx_stack.root / "zero-os-newer.efi", size=1024 * 1024)
    nginx_stack.manage("import_kernel", str(newer), "--network", "prod")
    for _ in range(8):
        assert b"kernel=zero-os-newer.efi" in nginx_stack.get("/ipxe/prod/1")[2]


def test_django_delivery_sheds_downloads_beyond_the_cap_and_still_answers_scripts(
    tmp_path, ipxe_dir
):
    settings = {
        "ZOSBOOT_FILE_DELIVERY": "django",
        "ZOSBOOT_MAX_STREAMS": "3",
        "ZOSBOOT_THREADS": "4",  # 2 workers x (4 - 2) = 4 per-worker slots, 3 in all
    }
    with running_stack(tmp_path, ipxe_dir, **settings) as stack:
        assert not any("nginx" in line for line in stack.processes())
        kernel = sparse_kernel(stack.root / "zero-os-storm.efi")
        stack.manage("import_kernel", str(kernel), "--network", "prod")
        readers = [SlowReader(stack.port, "/kernel/net/prod.efi") for _ in range(10)]
        try:
            statuses = [reader.status for reader in readers]
            assert statuses.count(200) == 3, statuses
            assert statuses.count(503) == 7, statuses
            shed = next(reader for reader in readers if reader.status == 503)
            retry_after = re.search(rb"\r\nRetry-After: (\d+)\r\n", shed.head)
            assert retry_after and 2 <= int(retry_after.group(1)) <= 7, shed.head
            # Scripts are never refused because of kernel load.
            status, _, body = stack.get("/ipxe/prod/1234", timeout=10)
            assert status == 200 and b"imgfetch" in body
            status, headers, body = stack.get("/kernel/net/prod.efi")
            assert status == 503 and "Retry-After" in headers
            assert body.startswith(b"#!ipxe") and b"sending kernels to many nodes" in body
        finally:
            for reader in readers:
                reader.close()
        # Closed connections give their slots back.
        deadline = time.monotonic() + 15
        while (status := stack.get("/kernel/net/prod.efi")[0]) != 200:
            assert time.monotonic() < deadline, "stream slots were not released"
            time.sleep(0.2)


@contextlib.contextmanager
def small_kernel_stack(tmp_path, ipxe_dir, **settings):
    with running_stack(tmp_path, ipxe_dir, **settings) as stack:
        kernel = sparse_kernel(stack.root / "zero-os-storm.efi", size=1024 * 1024)
        stack.manage("import_kernel", str(kernel), "--network", "prod")
        yield stack


def test_a_graceful_stop_writes_every_boot_event_and_stops_both_servers(tmp_path, ipxe_dir):
    # Events are queued for an hour: only the flush on the way out can write them.
    with small_kernel_stack(tmp_path, ipxe_dir, ZOSBOOT_HISTORY_FLUSH_SECONDS="3600") as stack:
        for farm in range(1, 41):
            assert stack.get(f"/ipxe/prod/{farm}")[0] == 200
        assert stack.get("/kernel/net/prod.efi")[0] == 200
        assert len(stack.processes()) >= 4  # nginx master + workers, gunicorn + workers
        assert stack.stop() == 0
        assert stack.processes() == []
        counts = stack.query(
            "from provisioning.models import BootEvent as E; "
            "print(E.objects.filter(kind='script').count(), "
            "E.objects.filter(kind='kernel').count())"
        )
    assert counts == "40 1"


def test_the_history_writer_of_each_worker_writes_while_serving(tmp_path, ipxe_dir):
    with small_kernel_stack(tmp_path, ipxe_dir, ZOSBOOT_HISTORY_FLUSH_SECONDS="0.2") as stack:
        for farm in range(1, 21):
            assert stack.get(f"/ipxe/prod/{farm}")[0] == 200
        count = "from provisioning.models import BootEvent as E; print(E.objects.count())"
        deadline = time.monotonic() + 20
        while stack.query(count) != "20":
            assert time.monotonic() < deadline, stack.query(count)
            time.sleep(0.3)


def test_metrics_add_up_across_workers_and_move_with_the_traffic(tmp_path, ipxe_dir):
    with small_kernel_stack(tmp_path, ipxe_dir, ZOSBOOT_WORKERS="3") as stack:
        for farm in range(1, 31):  # spread over the three workers by the kernel
            assert stack.get(f"/ipxe/prod/{farm}")[0] == 200
        assert stack.get("/ipxe/nope/1")[0] == 404
        assert stack.get("/kernel/net/prod.efi")[0] == 200
        assert stack.get("/provision/52-54-00-00-00-09")[0] == 200
        status, headers, body = stack.get("/metrics")
        assert status == 200 and headers["Content-Type"].startswith("text/plain")
    text = body.decode()
    assert 'zosboot_scripts_total{network="prod",outcome="served"} 30.0' in text
    assert 'zosboot_scripts_total{network="-",outcome="404"} 1.0' in text
    assert 'zosboot_kernel_downloads_total{kernel="zero-os-storm.efi"} 1.0' in text
    bytes_line = r'^zosboot_kernel_bytes_total\{kernel="zero-os-storm.efi"\} (\S+)$'
    sent = re.search(bytes_line, text, re.M)
    assert sent and float(sent.group(1)) == 1024 * 1024
    assert 'zosboot_provision_answers_total{answer="pending"} 1.0' in text
    assert "zosboot_pending_nodes 1.0" in text
    assert "zosboot_boot_history_rows" in text
