"""Configuration mistakes reported by `manage.py check` (and at `migrate`), not at first boot."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import Error, Warning, register


def _is_base_url(url: str) -> bool:
    """An http(s) URL with a host, no query, no fragment, and only characters an iPXE script
    can carry as they are."""
    parts = urlsplit(url)
    return (
        parts.scheme in ("http", "https")
        and bool(parts.netloc)
        and not parts.query
        and not parts.fragment
        and not set(url) & set(" \"'$;&|<>{}\\#`")
    )


@register()
def check_public_url(app_configs, **kwargs):
    problems = []
    url = settings.ZOSBOOT_PUBLIC_URL
    if url:
        if not _is_base_url(url):
            problems.append(
                Error(
                    f"ZOSBOOT_PUBLIC_URL={url!r} is not an http(s) base URL.",
                    hint="Use the address nodes reach the service at, e.g. https://bootstrap.grid.tf",
                    id="provisioning.E001",
                )
            )
    elif "*" in settings.ALLOWED_HOSTS:
        problems.append(
            Warning(
                "DJANGO_ALLOWED_HOSTS allows any host and ZOSBOOT_PUBLIC_URL is unset: boot "
                "scripts are only served for hosts listed explicitly.",
                hint="Set ZOSBOOT_PUBLIC_URL to the address nodes use.",
                id="provisioning.W001",
            )
        )
    return problems


@register()
def check_mirrors(app_configs, **kwargs):
    """Mirrors and the kernel redirect go into scripts and images: base URLs only."""
    problems = []
    for url in settings.ZOSBOOT_MIRRORS:
        if not _is_base_url(url):
            problems.append(
                Error(
                    f"ZOSBOOT_MIRRORS: {url!r} is not an http(s) base URL.",
                    hint="Comma-separated base URLs, e.g. http://edge1.example.org,https://cdn.example.org",
                    id="provisioning.E005",
                )
            )
    redirect = settings.ZOSBOOT_KERNEL_REDIRECT
    if redirect and not _is_base_url(redirect):
        problems.append(
            Error(
                f"ZOSBOOT_KERNEL_REDIRECT={redirect!r} is not an http(s) base URL.",
                hint="The base URL of the CDN or object store that mirrors /kernel/sha256/.",
                id="provisioning.E006",
            )
        )
    return problems


@register()
def check_kernels_dir(app_configs, **kwargs):
    path = settings.ZOSBOOT_KERNELS_DIR
    if path.exists() and not path.is_dir():
        return [Error(f"ZOSBOOT_KERNELS_DIR={path} is not a directory.", id="provisioning.E002")]
    return []


@register()
def check_file_delivery(app_configs, **kwargs):
    from .delivery import DELIVERIES

    if settings.ZOSBOOT_FILE_DELIVERY not in DELIVERIES:
        return [
            Error(
                f"ZOSBOOT_FILE_DELIVERY={settings.ZOSBOOT_FILE_DELIVERY!r} is not one of "
                f"{', '.join(DELIVERIES)}.",
                hint="nginx behind the front server make run starts, django without one.",
                id="provisioning.E003",
            )
        ]
    return []


@register()
def check_log_format(app_configs, **kwargs):
    if settings.ZOSBOOT_LOG_FORMAT not in ("text", "json"):
        return [
            Error(
                f"ZOSBOOT_LOG_FORMAT={settings.ZOSBOOT_LOG_FORMAT!r} is not one of text, json.",
                hint="text for a terminal or journal, json for a log collector.",
                id="provisioning.E004",
            )
        ]
    return []


@register()
def check_allowed_networks(app_configs, **kwargs):
    """Each address-range list parses; a wrong one would lock ops out (or /metrics)."""
    from .access import parse_networks

    problems = []
    for name, id in (
        ("ZOSBOOT_OPS_ALLOWED_NETWORKS", "provisioning.E010"),
        ("ZOSBOOT_METRICS_ALLOWED_NETWORKS", "provisioning.E011"),
    ):
        try:
            parse_networks(tuple(getattr(settings, name)))
        except ValueError as exc:
            problems.append(
                Error(
                    f"{name}: {exc}.",
                    hint="Comma-separated address ranges, e.g. 10.0.0.0/8,2001:db8::/32.",
                    id=id,
                )
            )
    return problems
