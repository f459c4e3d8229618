"""Is this instance able to serve? `/healthz`: the process answers. `/readyz`: the database
answers, the kernel store can be read, the iPXE binaries are there, the image cache can
be written with room to build and the static files are collected; each check named in the
JSON body, 503 when one fails, so a load balancer takes the instance out and an operator
sees why."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

from django.conf import settings
from django.contrib.staticfiles.storage import staticfiles_storage
from django.db import DatabaseError, connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from provisioning import store

from . import builder
from .formats import check_toolchain


def _database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return "answers"


def _kernel_store() -> str:
    path = Path(settings.ZOSBOOT_KERNELS_DIR)
    if not path.is_dir() or not os.access(path, os.R_OK | os.X_OK):
        raise RuntimeError(f"{path} is not a readable directory")
    report = store.check(budget_bytes=store.READY_BUDGET_BYTES)
    if not report.serves_right:
        raise RuntimeError("; ".join(report.lines()) + " (manage.py check_store)")
    said = f"{path} is readable, {report.checked} kernel(s) verified"
    if report.unverified:
        said += f", {len(report.unverified)} still to verify"
    if report.orphans:
        said += f"; {len(report.orphans)} file(s) without a kernel (manage.py check_store)"
    return said


def _ipxe_binaries() -> str:
    problems = check_toolchain(builder.toolchain(), ("lkrn-plain", "efi-plain"))
    if problems:
        raise RuntimeError("; ".join(problems))
    return f"present in {settings.ZOSBOOT_IPXE_DIR}"


def _image_cache() -> str:
    path = Path(settings.ZOSBOOT_ARTIFACTS_DIR)
    existing = next(p for p in (path, *path.parents) if p.exists())
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise RuntimeError(f"{path} is not writable")
    free = shutil.disk_usage(existing).free
    if free < builder.BUILD_ROOM_BYTES:
        raise RuntimeError(f"only {free} bytes free under {path}")
    return f"writable, {free // (1024 * 1024)} MiB free"


def _static_files() -> str:
    # The portal and the admin name their files through the manifest `collectstatic` writes;
    # without it (or with its files gone) every page is a 500.
    load_manifest = getattr(staticfiles_storage, "load_manifest", None)
    if load_manifest is None:
        return "served from the apps (no manifest)"
    try:
        manifest, _ = load_manifest()
    except ValueError as exc:  # unreadable, or written by another Django
        raise RuntimeError(f"{exc}: run manage.py collectstatic") from exc
    if not manifest:
        raise RuntimeError(
            f"no static files manifest in {settings.STATIC_ROOT}: run manage.py collectstatic"
        )
    missing = [name for name in manifest.values() if not staticfiles_storage.exists(name)]
    if missing:
        raise RuntimeError(
            f"{len(missing)} collected static files missing in {settings.STATIC_ROOT}, "
            f"e.g. {missing[0]}: run manage.py collectstatic"
        )
    return f"{len(manifest)} files collected"


CHECKS: dict[str, Callable[[], str]] = {
    "database": _database,
    "kernel_store": _kernel_store,
    "ipxe_binaries": _ipxe_binaries,
    "image_cache": _image_cache,
    "static_files": _static_files,
}


@never_cache
@require_safe
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@never_cache
@require_safe
def readyz(request: HttpRequest) -> JsonResponse:
    results = {}
    for name, check in CHECKS.items():
        try:
            results[name] = {"ok": True, "detail": check()}
        except (OSError, RuntimeError, DatabaseError) as exc:
            results[name] = {"ok": False, "detail": str(exc)[:300]}
    ready = all(result["ok"] for result in results.values())
    response = JsonResponse(
        {"status": "ok" if ready else "failing", "checks": results}, status=200 if ready else 503
    )
    response._has_been_logged = True  # an answer about the instance, not a failure of it
    return response
