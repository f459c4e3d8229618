"""Fixtures of the artifacts tests: the toolchain, Debian's kernels the guests boot (PC and
arm64), and the live service QEMU guests boot from (test_boot.py, test_boot_sites.py)."""

import subprocess
from pathlib import Path

import pytest

from artifacts.formats import Toolchain
from artifacts.tests import qemu
from provisioning.kernels import register
from provisioning.models import Arch, Kernel, Network

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def tc(ipxe_dir: Path) -> Toolchain:
    """The toolchain the builders use: the pinned iPXE binaries, Debian's tools."""
    return Toolchain(ipxe_dir=ipxe_dir)


@pytest.fixture(scope="session")
def test_kernel() -> Path:
    problems = qemu.host_problems()
    assert not problems, "; ".join(problems) + " (make test installs them)"
    result = subprocess.run(
        ["bash", str(REPO / "setup" / "test-kernel.sh")],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert result.returncode == 0, f"setup/test-kernel.sh failed:\n{result.stderr}"
    return Path(result.stdout.strip())


@pytest.fixture(scope="session")
def arm64_test_kernel() -> Path:
    problems = qemu.host_problems(("uefi-arm64",))
    assert not problems, "; ".join(problems) + " (make test installs them)"
    result = subprocess.run(
        ["bash", str(REPO / "setup" / "test-kernel.sh"), "arm64"],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert result.returncode == 0, f"setup/test-kernel.sh arm64 failed:\n{result.stderr}"
    return Path(result.stdout.strip())


@pytest.fixture
def service(live_server, settings, test_kernel, tmp_path):
    """The live service as the guest sees it, with the real kernel on the `test` network, and
    an arm64 kernel beside it (a header only: no PC may ever download it)."""
    settings.ZOSBOOT_PUBLIC_URL = qemu.GUEST_URL
    settings.ZOSBOOT_NTP_SERVER = ""  # the guest reaches nothing but the service
    settings.ALLOWED_HOSTS = [qemu.GUEST_SERVER, "localhost", "127.0.0.1", "testserver"]
    kernel, _ = register(test_kernel, "debian-vmlinuz.efi")
    boot_network().switch_kernel(kernel)
    boot_network().switch_kernel(_arm64_header_only(tmp_path), arch=Arch.ARM64)
    return int(live_server.url.rsplit(":", 1)[1])


def _arm64_header_only(tmp_path: Path) -> Kernel:
    head = bytearray(0x200)
    head[0:2], head[0x38:0x3C] = b"MZ", b"ARMd"
    source = tmp_path / "arm64-placeholder.efi"
    source.write_bytes(bytes(head))
    return register(source)[0]


def boot_network() -> Network:
    # Transactional tests flush the networks the data migration made.
    network, _ = Network.objects.get_or_create(slug="test", defaults={"name": "Testnet"})
    return network
