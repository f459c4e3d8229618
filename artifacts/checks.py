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
    parent = path if path.exists() else path.parent
    if not os.access(parent, os.W_OK):
        return [Error(f"ZOSBOOT_ARTIFACTS_DIR={path} is not writable.", id="artifacts.E002")]
    return []
