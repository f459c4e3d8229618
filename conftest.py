"""Test-wide setup: every test gets its own kernel store, image cache and static root; the
pinned iPXE binaries are installed once per machine (setup/install-ipxe.sh is a no-op then)."""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

import pytest
from django.core.files.base import ContentFile

REPO = Path(__file__).resolve().parent

# Metrics of this test run only (prometheus_client's multiprocess files), set before the
# settings are read.
os.environ["ZOSBOOT_METRICS_DIR"] = tempfile.mkdtemp(prefix="zosboot-test-metrics-")


def cache_dir() -> Path:
    return Path(os.environ.get("ZOSBOOT_TEST_CACHE", Path.home() / ".cache" / "zosboot-test"))


@pytest.fixture(scope="session")
def ipxe_dir() -> Path:
    """The iPXE binaries, installed on first use into the test cache (or ZOSBOOT_IPXE_DIR)."""
    configured = os.environ.get("ZOSBOOT_IPXE_DIR")
    target = Path(configured) if configured else cache_dir() / "ipxe"
    result = subprocess.run(
        ["bash", str(REPO / "setup" / "install-ipxe.sh"), str(target)],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert result.returncode == 0, f"setup/install-ipxe.sh failed:\n{result.stderr}"
    return target


@pytest.fixture(autouse=True)
def _isolated_dirs(settings, tmp_path, ipxe_dir):
    settings.ZOSBOOT_KERNELS_DIR = tmp_path / "kernels"
    settings.ZOSBOOT_KERNELS_DIR.mkdir()
    settings.ZOSBOOT_ARTIFACTS_DIR = tmp_path / "artifacts"
    settings.ZOSBOOT_IPXE_DIR = ipxe_dir
    settings.STATIC_ROOT = tmp_path / "static"
    settings.STATIC_ROOT.mkdir()
    settings.ZOSBOOT_NTP_SERVER = "pool.ntp.org"
    settings.ZOSBOOT_PUBLIC_URL = ""
    settings.ZOSBOOT_RUN_DIR = tmp_path / "run"
    settings.ZOSBOOT_FILE_DELIVERY = "django"
    # Each event in its own request, so a test sees it at once (the batching has its tests).
    settings.ZOSBOOT_HISTORY_FLUSH_SECONDS = 0
    # Admin logins in tests do not need a slow password hash.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # No collectstatic in tests: serve static files straight from the apps.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture
def make_kernel(db):
    def make(
        name: str = "zero-os-development-amd64.efi",
        content: bytes = b"kernel bytes",
        arch: str = "amd64",
    ):
        from provisioning.models import Kernel

        kernel = Kernel(name=name, arch=arch)
        kernel.file.save(name, ContentFile(content), save=False)
        kernel.save()
        return kernel

    return make


@pytest.fixture
def kernel(make_kernel):
    return make_kernel()


@pytest.fixture
def prod(kernel):
    from provisioning.models import Network

    # get_or_create: transactional tests flush the networks the data migration made.
    network, _ = Network.objects.get_or_create(slug="prod", defaults={"name": "Production"})
    network.switch_kernel(kernel)
    return network


@pytest.fixture(scope="session")
def django_db_modify_db_settings(tmp_path_factory):
    """Tests use a SQLite *file*, like the service does (WAL, busy timeout), not Django's
    in-memory database, whose shared-cache mode fails concurrent readers at once with
    "table is locked" instead of letting them wait: the concurrency tests must see what
    production sees."""
    from django.conf import settings

    default = settings.DATABASES["default"]
    if default["ENGINE"] == "django.db.backends.sqlite3":
        default.setdefault("TEST", {})["NAME"] = str(tmp_path_factory.mktemp("db") / "test.sqlite3")


@pytest.fixture
def dev_follows_a_link(prod, make_kernel):
    """dev follows a branch link, which moved to a new build a day after dev started
    following it: (dev, link, first build, second build, now)."""
    from datetime import timedelta

    from django.utils import timezone

    from provisioning.models import BranchLink, Network

    def dated(change, moment) -> None:
        type(change).objects.filter(pk=change.pk).update(changed_at=moment)

    first = make_kernel("zero-os-dev-aaaa.efi", b"a")
    second = make_kernel("zero-os-dev-bbbb.efi", b"b")
    now = timezone.now().replace(microsecond=0)
    link, made = BranchLink.point("zero-os-development.efi", first)
    dated(made, now - timedelta(days=3))
    dev, _ = Network.objects.get_or_create(slug="dev", defaults={"name": "Devnet"})
    dated(dev.follow_link(link), now - timedelta(days=2))
    _, moved = BranchLink.point(link.name, second)
    dated(moved, now - timedelta(days=1))
    return dev, link, first, second, now
