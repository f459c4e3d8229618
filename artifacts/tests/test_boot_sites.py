"""Sites, proven by booting: iPXE fetches its kernel from the server its script came from (an
edge, with the origin down), an image whose public URL is dead boots from its mirror, and a
kernel offloaded to a CDN (302) is followed. The guest reaches only the test's own servers on
127.0.0.1, through the harness's relays."""

from __future__ import annotations

import functools
import http.server
import os
import re
import threading
import time
from pathlib import Path

import pytest
from django.test import Client

from artifacts.tests import qemu
from artifacts.tests.conftest import boot_network
from artifacts.tests.test_boot import download, expect_farm, image_path
from provisioning.models import BootEvent
from provisioning.tests.stack import free_port, running_edge, running_stack

pytestmark = [pytest.mark.boot, pytest.mark.django_db(transaction=True)]

#: A second address on the guest's network, for a second server (a dead one, a CDN).
OTHER_SERVER = "10.0.2.101"


def _chain(settings, path: str) -> qemu.DirectKernel:
    """iPXE chaining `path` at the harness's server, as a PXE setup or an image would."""
    ipxe = Path(settings.ZOSBOOT_IPXE_DIR) / "ipxe.lkrn"
    return qemu.DirectKernel(ipxe, append=f"dhcp && chain {qemu.GUEST_URL}{path}")


def test_a_node_boots_through_an_edge_with_the_origin_down(
    tmp_path, ipxe_dir, test_kernel, settings
):
    with running_stack(tmp_path / "origin", ipxe_dir, ZOSBOOT_NTP_SERVER="") as origin:
        kernel = tmp_path / "origin" / "debian-vmlinuz.efi"
        kernel.write_bytes(test_kernel.read_bytes())
        kernel.chmod(0o644)
        origin.manage("import_kernel", str(kernel), "--network", "test")
        with running_edge(tmp_path / "edge", origin.url) as edge:
            path = image_path("ipxe", "edge")
            # The edge saw this node's script once, and pulled the release (edge.sh --warm).
            assert edge.get(path)[0] == 200
            assert edge.warm().returncode == 0
            origin.stop()
            result = qemu.boot(
                _chain(settings, path), firmware="bios", http_port=edge.port, timeout=240,
                workdir=tmp_path,
            )  # fmt: skip
            expect_farm(result.kernel_cmdline or result.log[-3000:], 4242, "edge")
            # The relative kernel address resolved against the script's own URL: the edge.
            assert "Downloading /kernel/sha256/" in result.log
            # The edge's log (written every 2 s) shows the script came from its copy.
            access_log = tmp_path / "edge" / "log" / "edge-access.log"
            deadline = time.monotonic() + 10
            while "edge=stale" not in access_log.read_text():
                assert time.monotonic() < deadline, access_log.read_text()
                time.sleep(0.5)
            assert re.search(
                r"GET /kernel/sha256/[0-9a-f]{64}\?mac=\S+ HTTP/1.1\" 200 \d+ "
                r"cache=HIT",
                access_log.read_text(),
            )


def test_an_iso_whose_public_url_is_dead_boots_from_its_mirror(service, settings, tmp_path):
    # Nothing listens where the public URL points; the mirror is the live service.
    settings.ZOSBOOT_PUBLIC_URL = f"http://{OTHER_SERVER}"
    settings.ZOSBOOT_MIRRORS = [qemu.GUEST_URL]
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, OTHER_SERVER]
    iso = download(image_path("iso", "mirror"), tmp_path / "zos.iso")
    result = qemu.boot(
        qemu.Cdrom(iso), firmware="bios", http_port=service, timeout=300, workdir=tmp_path,
        servers={OTHER_SERVER: free_port()},
    )  # fmt: skip
    expect_farm(result.kernel_cmdline or result.log[-3000:], 4242, "mirror")
    log = result.log
    assert log.index(f"Asking http://{OTHER_SERVER} for the boot script") < log.index(
        f"Asking {qemu.GUEST_URL} for the boot script"
    )


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def test_a_kernel_offloaded_to_a_cdn_is_followed_by_ipxe(service, settings, tmp_path):
    kernel = boot_network().current_kernel
    # The "CDN": plain static files, the content address laid out as the origin serves it.
    root = tmp_path / "cdn"
    (root / "kernel" / "sha256").mkdir(parents=True)
    os.link(kernel.file.path, root / "kernel" / "sha256" / kernel.sha256)
    cdn = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_Quiet, directory=str(root))
    )
    threading.Thread(target=cdn.serve_forever, daemon=True).start()
    settings.ZOSBOOT_KERNEL_REDIRECT = f"http://{OTHER_SERVER}"
    try:
        path = image_path("ipxe", "cdn")
        script = Client().get(path).content.decode()
        assert f"set zos_source0 {kernel.content_path}" in script
        result = qemu.boot(
            _chain(settings, path), firmware="bios", http_port=service, timeout=240,
            workdir=tmp_path, servers={OTHER_SERVER: cdn.server_address[1]},
        )  # fmt: skip
    finally:
        cdn.shutdown()
        cdn.server_close()
    expect_farm(result.kernel_cmdline or result.log[-3000:], 4242, "cdn")
    # Decided and recorded at the origin, sent by the CDN.
    event = BootEvent.objects.get(kind="kernel")
    assert event.kernel_sha256 == kernel.sha256 and event.mac == qemu.DEFAULT_MAC
