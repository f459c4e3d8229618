"""Who is asking: the client's address (as the trusted proxy saw it) and the base URL the
scripts must name, decided by configuration, never by an arbitrary Host header."""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.http import HttpRequest
from django.http.request import split_domain_port, validate_host

from .errors import BootError


def public_base_url(request: HttpRequest) -> str:
    """The URL nodes must use to reach this service; never decided by an arbitrary Host header.

    ZOSBOOT_PUBLIC_URL wins. Otherwise the request's host is used only when DJANGO_ALLOWED_HOSTS
    names it explicitly (a wildcard would let any client point nodes at another server).
    """
    if settings.ZOSBOOT_PUBLIC_URL:
        return settings.ZOSBOOT_PUBLIC_URL
    host = request.get_host()  # validated against ALLOWED_HOSTS (DisallowedHost -> 400)
    domain, port = split_domain_port(host)
    explicit = [pattern for pattern in settings.ALLOWED_HOSTS if pattern != "*"]
    if settings.DEBUG:
        explicit += [".localhost", "127.0.0.1", "[::1]"]
    if not validate_host(domain, explicit):
        raise BootError(
            400,
            "this host name is not one the service may name in boot scripts; "
            "set ZOSBOOT_PUBLIC_URL or list the host in DJANGO_ALLOWED_HOSTS",
        )
    # Without a trusted proxy (which names the port it listens on), a port in the Host header
    # is the client's word only: scripts name it only when it is the one the service answers on.
    if port and not settings.ZOSBOOT_TRUST_PROXY and port != request.META.get("SERVER_PORT"):
        raise BootError(
            400,
            f"port {port} is not the one the service answers on; set ZOSBOOT_PUBLIC_URL to "
            "the address nodes use",
        )
    return f"{request.scheme}://{host}"


def client_ip(request: HttpRequest) -> str | None:
    """The node's address: the proxy's view of it when the proxy is trusted."""
    if not hasattr(request, "_zosboot_client_ip"):
        request._zosboot_client_ip = _client_ip(request)
    return request._zosboot_client_ip


def _client_ip(request: HttpRequest) -> str | None:
    candidate = request.META.get("REMOTE_ADDR", "")
    if settings.ZOSBOOT_TRUST_PROXY:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        if forwarded:
            # The last entry is the one our proxy added; earlier ones are client-supplied.
            candidate = forwarded.split(",")[-1].strip()
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return None
