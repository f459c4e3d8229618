"""An edge for real: setup/edge.sh (nginx alone) in front of the origin as `make run` starts it,
both on 127.0.0.1. A release crosses the edge's uplink once; with the origin gone (stopped, or
hung) the edge answers what it answered before, and says so."""

from __future__ import annotations

import hashlib
import re
import socket
import threading
import time

import pytest

from provisioning.tests.stack import running_edge, running_stack, sparse_kernel

pytestmark = pytest.mark.stack

SIZE = 64 * 1024 * 1024


@pytest.fixture
def origin(tmp_path, ipxe_dir):
    # The edge passes the node's address on; the origin's nginx believes it from the edge.
    with running_stack(tmp_path / "origin", ipxe_dir, ZOSBOOT_REAL_IP_FROM="127.0.0.1") as stack:
        kernel = sparse_kernel(stack.root / "zero-os-site.efi", SIZE)
        stack.manage("import_kernel", str(kernel), "--network", "prod")
        stack.sha256 = stack.query(
            "from provisioning.models import Kernel; print(Kernel.objects.get().sha256)"
        )
        yield stack


@pytest.fixture
def edge(origin, tmp_path):
    with running_edge(tmp_path / "edge", origin.url) as edge:
        yield edge


def origin_kernel_bytes(origin, wait_for: int = 0, timeout: float = 10) -> int:
    """Bytes of /kernel/sha256/ the origin's nginx sent, from its access log (written every
    2 s): waits until at least `wait_for` are logged, or `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        log = origin.root / "data" / "log" / "nginx-access.log"
        text = log.read_text() if log.exists() else ""
        sent = sum(
            int(match.group(1))
            for match in re.finditer(r'"GET /kernel/sha256/\S+ HTTP/1\.1" 200 (\d+)', text)
        )
        if sent >= wait_for or time.monotonic() > deadline:
            return sent
        time.sleep(0.5)


def test_twenty_simultaneous_pulls_through_a_cold_edge_cost_the_origin_one_copy(origin, edge):
    results = []

    def pull(index: int) -> None:
        status, headers, body = edge.get(
            f"/kernel/sha256/{origin.sha256}?mac=52:54:00:00:00:{index:02x}", timeout=120
        )
        results.append((status, hashlib.sha256(body).hexdigest(), headers))

    threads = [threading.Thread(target=pull, args=(index,)) for index in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=180)
    assert [(status, digest) for status, digest, _ in results] == [(200, origin.sha256)] * 20
    sent = origin_kernel_bytes(origin, wait_for=SIZE)
    assert SIZE <= sent <= 1.1 * SIZE, f"the origin sent {sent} bytes for one {SIZE}-byte kernel"
    # Later nodes, whatever their ?mac= and the host name they used, come from the cache.
    status, headers, _ = edge.get(f"/kernel/sha256/{origin.sha256}?mac=x", Host="edge.farm.example")
    assert status == 200 and headers["X-Zosboot-Edge-Cache"] == "HIT"
    assert origin_kernel_bytes(origin, timeout=3) <= 1.1 * SIZE


def test_a_script_through_the_edge_reaches_the_origin_with_the_node_address(origin, edge):
    status, headers, body = edge.get("/ipxe/prod/1234", source="127.0.0.3")
    assert status == 200 and headers["X-Zosboot-Edge"] == "fresh"
    assert f"set zos_source0 /kernel/sha256/{origin.sha256}".encode() in body
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        recorded = origin.query(
            "from provisioning.models import BootEvent; "
            "print(list(BootEvent.objects.filter(kind='script').values_list('client_ip', "
            "flat=True)))"
        )
        if recorded != "[]":
            break
        time.sleep(0.5)
    assert recorded == "['127.0.0.3']"


def test_a_kernel_asked_for_by_name_is_pointed_at_its_content_address_on_the_edge(origin, edge):
    status, headers, _ = edge.get("/kernel/net/prod.efi?mac=52:54:00:00:00:01")
    assert status == 302 and headers["Location"] == f"/kernel/sha256/{origin.sha256}"
    status, _, body = edge.get(headers["Location"])
    assert status == 200 and len(body) == SIZE


def test_warming_pulls_what_the_networks_boot_before_the_nodes_ask(origin, edge):
    result = edge.warm()
    assert result.returncode == 0, result.stderr
    assert "pulling zero-os-site.efi" in result.stderr
    status, headers, _ = edge.get(f"/kernel/sha256/{origin.sha256}")
    assert status == 200 and headers["X-Zosboot-Edge-Cache"] == "HIT"


def test_the_ops_surface_is_not_on_the_edge(edge):
    for path in ("/admin/", "/api/v1/kernels", "/api/kernel", "/metrics", "/", "/kernels/"):
        status, _, body = edge.get(path)
        assert status == 404, path
        assert body.startswith(b"#!ipxe\n")


def test_with_the_origin_stopped_the_edge_answers_what_it_answered_before(origin, edge):
    assert edge.get("/ipxe/prod/1234/console=ttyS0")[0] == 200
    assert edge.get("/provision/52-54-00-00-00-07")[0] == 200
    assert edge.get(f"/kernel/sha256/{origin.sha256}")[0] == 200
    origin.stop()

    status, headers, body = edge.get("/ipxe/prod/1234/console=ttyS0")
    assert status == 200 and headers["X-Zosboot-Edge"] == "stale"
    assert b"farmer_id=1234 console=ttyS0" in body
    assert edge.get("/provision/52-54-00-00-00-07")[1]["X-Zosboot-Edge"] == "stale"
    status, headers, body = edge.get(f"/kernel/sha256/{origin.sha256}?mac=other")
    assert status == 200 and len(body) == SIZE
    # Another farm's script (another query, another path) was never answered: a readable 503,
    # at once.
    started = time.monotonic()
    status, headers, body = edge.get("/ipxe/prod/999")
    assert time.monotonic() - started < 3
    assert status == 503 and headers["Retry-After"] == "30"
    assert body.startswith(b"#!ipxe\n") and b"zosboot edge error 503" in body


def test_a_hung_origin_turns_to_the_last_good_answer_within_seconds(origin, edge):
    assert edge.get("/ipxe/prod/1234")[0] == 200
    origin.stop()
    # Something takes the origin's port and accepts connections, but never answers.
    hung = socket.socket()
    hung.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    hung.bind(("127.0.0.1", origin.port))
    hung.listen(64)
    try:
        started = time.monotonic()
        status, headers, _ = edge.get("/ipxe/prod/1234", timeout=30)
        took = time.monotonic() - started
        assert status == 200 and headers["X-Zosboot-Edge"] == "stale"
        assert took < 8, f"the edge waited {took:.1f} s for a hung origin"
        started = time.monotonic()
        assert edge.get("/ipxe/prod/555", timeout=30)[0] == 503
        assert time.monotonic() - started < 8
    finally:
        hung.close()
