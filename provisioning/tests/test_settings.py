"""Settings read from the environment: a production process refuses to start without a key."""

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _check(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PYTEST"))}
    clean.update(ZOSBOOT_DATA_DIR=str(tmp_path), ZOSBOOT_IPXE_DIR=str(tmp_path), **env)
    return subprocess.run(
        [sys.executable, str(REPO / "manage.py"), "shell", "--no-imports", "-c",
         "from django.conf import settings; print(len(settings.SECRET_KEY))"],
        env=clean, capture_output=True, text=True, timeout=60, cwd=REPO,
    )  # fmt: skip


def test_without_a_secret_key_the_service_refuses_to_start(tmp_path):
    result = _check(tmp_path)
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is not set" in result.stderr


def test_the_key_file_made_by_make_run_is_used(tmp_path):
    (tmp_path / "secret-key").write_text("k" * 50 + "\n")
    result = _check(tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "50"


def test_debug_mode_generates_a_key(tmp_path):
    assert _check(tmp_path, DJANGO_DEBUG="1").returncode == 0


def _deploy_check(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "ZOSBOOT_"))}
    clean.pop("PYTEST_VERSION", None)
    clean.update(
        DJANGO_SECRET_KEY="deploy-check-" + "k" * 60,
        ZOSBOOT_DATA_DIR=str(tmp_path),
        ZOSBOOT_IPXE_DIR=str(Path.home() / ".cache" / "zosboot-test" / "ipxe"),
        **env,
    )
    return subprocess.run(
        [sys.executable, str(REPO / "manage.py"), "check", "--deploy"],
        env=clean, capture_output=True, text=True, timeout=60, cwd=REPO,
    )  # fmt: skip


def test_an_https_deployment_passes_the_deploy_check_with_secure_admin_cookies(tmp_path):
    result = _deploy_check(
        tmp_path,
        ZOSBOOT_PUBLIC_URL="https://bootstrap.example.org",
        DJANGO_ALLOWED_HOSTS="bootstrap.example.org",
    )
    said = result.stdout + result.stderr
    for check in ("W012", "W016", "W004", "W008"):  # cookies secure; HSTS/redirect: a choice
        assert f"security.{check}" not in said, said
    assert "System check identified no issues" in said, said


def test_a_plain_http_deployment_keeps_cookies_usable_over_http(tmp_path):
    result = _deploy_check(
        tmp_path, ZOSBOOT_PUBLIC_URL="http://10.1.2.3", DJANGO_ALLOWED_HOSTS="10.1.2.3"
    )
    said = result.stdout + result.stderr
    assert "security.W012" in said  # the admin over plain HTTP: said, not hidden
