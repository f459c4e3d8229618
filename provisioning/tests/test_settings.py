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
