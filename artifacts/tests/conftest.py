from pathlib import Path

import pytest

from artifacts.formats import Toolchain


@pytest.fixture(scope="session")
def tc(ipxe_dir: Path) -> Toolchain:
    """The toolchain the builders use: the pinned iPXE binaries, Debian's tools."""
    return Toolchain(ipxe_dir=ipxe_dir)
