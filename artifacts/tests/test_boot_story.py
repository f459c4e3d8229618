"""Every boot tells its story, proven by booting: the real iPXE running the real script reports
that the kernel arrived (then Linux starts), that downloads failed (attempt by attempt, with
iPXE's error), and that a kernel could not be started; the node's timeline shows it."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from artifacts.tests import qemu
from artifacts.tests.conftest import boot_network
from artifacts.tests.test_boot import expect_farm, image_path
from provisioning import timeline
from provisioning.kernels import register
from provisioning.models import BootEvent, Kernel

pytestmark = [pytest.mark.boot, pytest.mark.django_db(transaction=True)]


def _chain(settings, path: str) -> qemu.DirectKernel:
    ipxe = Path(settings.ZOSBOOT_IPXE_DIR) / "ipxe.lkrn"
    return qemu.DirectKernel(ipxe, append=f"dhcp && chain {qemu.GUEST_URL}{path}")


def test_a_boot_reports_its_kernel_arrived_and_linux_starts(service, settings, tmp_path):
    path = image_path("ipxe", "story")
    result = qemu.boot(
        _chain(settings, path), firmware="bios", http_port=service, timeout=240,
        workdir=tmp_path,
    )  # fmt: skip
    expect_farm(result.kernel_cmdline or result.log[-3000:], 4242, "story")
    arrived = BootEvent.objects.get(kind="arrived")
    script = BootEvent.objects.get(kind="script")
    assert arrived.token == script.token and arrived.mac == qemu.DEFAULT_MAC
    assert arrived.kernel_name == "debian-vmlinuz.efi" and arrived.seconds is not None
    (boot,) = timeline.node_timeline(qemu.DEFAULT_MAC)
    assert [m.kind for m in boot.milestones] == ["script", "kernel", "arrived"]
    assert boot.outcome == "booted"


def test_failed_downloads_are_reported_attempt_by_attempt(service, settings, tmp_path):
    settings.ZOSBOOT_DOWNLOAD_IDLE_SECONDS = 3
    kernel = Kernel.objects.get(name="debian-vmlinuz.efi")
    os.unlink(kernel.file.path)  # the service answers 503 for it: every attempt times out
    path = image_path("ipxe", "failing")
    second_round = re.compile(r"Network card net0 \([^)]*\), round 2 of 3")
    result = qemu.boot(
        _chain(settings, path), firmware="bios", http_port=service, timeout=240,
        workdir=tmp_path, expect=second_round,
    )  # fmt: skip
    assert "attempt 3 of 3 on net0" in result.log
    failed = BootEvent.objects.filter(kind="failed").order_by("attempt")
    assert [(e.card, e.attempt) for e in failed] == [(0, 1), (0, 2), (0, 3)]
    assert all(re.fullmatch(r"0x[0-9a-f]{8}", e.error) for e in failed), failed
    (boot,) = timeline.node_timeline(qemu.DEFAULT_MAC)
    assert boot.outcome == "failed" and boot.failures == 3


def test_a_kernel_that_cannot_start_is_reported(service, settings, tmp_path):
    junk = tmp_path / "junk.efi"
    # Larger than 608 KiB: iPXE would take a smaller file for a PXE boot program and jump in.
    junk.write_bytes(os.urandom(2 * 1024 * 1024))
    kernel, _ = register(junk, "random-bytes.efi")
    boot_network().switch_kernel(kernel)
    path = image_path("ipxe", "junk")
    result = qemu.boot(
        _chain(settings, path), firmware="bios", http_port=service, timeout=240,
        workdir=tmp_path, expect="Rebooting in 20 seconds",  # after its report
    )  # fmt: skip
    assert "could not be started (error" in result.log
    started = BootEvent.objects.get(kind="start-failed")
    assert started.kernel_name == "random-bytes.efi" and started.error.startswith("0x")
    (boot,) = timeline.node_timeline(qemu.DEFAULT_MAC)
    assert boot.outcome == "could not start"
