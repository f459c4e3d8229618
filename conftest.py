"""Test-wide setup: every test gets its own kernel store and data directories."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _isolated_dirs(settings, tmp_path):
    settings.ZOSBOOT_KERNELS_DIR = tmp_path / "kernels"
    settings.ZOSBOOT_KERNELS_DIR.mkdir()
    settings.STATIC_ROOT = tmp_path / "static"
    settings.STATIC_ROOT.mkdir()
    settings.ZOSBOOT_NTP_SERVER = "pool.ntp.org"
    settings.ZOSBOOT_PUBLIC_URL = ""
    # Admin logins in tests do not need a slow password hash.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # No collectstatic in tests: serve static files straight from the apps.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
