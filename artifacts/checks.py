"""Report a missing iPXE binary or image tool at start-up, not when a farmer asks."""

from __future__ import annotations

import os

from django.conf import settings
from django.core.checks import Error, register

from . import builder
from .formats import check_toolchain


@register()
def check_image_toolchain(app_configs, **kwargs):
    return [
        Error(problem, hint="make run installs everything the builder needs", id="artifacts.E001")
        for problem in check_toolchain(builder.toolchain())
    ]


@register()
def check_artifacts_dir(app_configs, **kwargs):
    path = settings.ZOSBOOT_ARTIFACTS_DIR
    # The builder creates missing directories: what matters is the nearest one that exists.
    existing = next(p for p in (path, *path.parents) if p.exists())
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        return [Error(f"ZOSBOOT_ARTIFACTS_DIR={path} is not writable.", id="artifacts.E002")]
    return []
