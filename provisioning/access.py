"""Which addresses may reach what: address ranges from the settings, and the ops surface
(`/admin/`, `/api/`) answered only to ZOSBOOT_OPS_ALLOWED_NETWORKS.

The client address is the one the rest of the service uses (`clients.client_ip`: the trusted
proxy's view of it). Node-facing URLs never pass through here; `/metrics` has its own list.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable
from functools import lru_cache

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from .clients import client_ip

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

#: URL prefixes of the ops surface: the admin, the v1 API and the legacy publishing calls.
OPS_PREFIXES = ("/admin", "/api")


@lru_cache(maxsize=16)
def parse_networks(values: tuple[str, ...]) -> tuple[Network, ...]:
    """Address ranges in CIDR form (a bare address is a range of one); ValueError names the
    first value that is not one."""
    networks = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError:
            raise ValueError(f"{value!r} is not an address range (CIDR, e.g. 10.0.0.0/8)") from None
    return tuple(networks)


def address_in(address: str | None, values: Iterable[str]) -> bool:
    """Whether `address` lies in one of the ranges `values` (settings' CIDR strings)."""
    if address is None:
        return False
    ip = ipaddress.ip_address(address)
    if ip.version == 6 and ip.ipv4_mapped:  # ::ffff:10.0.0.1 is 10.0.0.1
        ip = ip.ipv4_mapped
    return any(ip in network for network in parse_networks(tuple(values)))


def is_ops_path(path: str) -> bool:
    return any(path == prefix or path.startswith(prefix + "/") for prefix in OPS_PREFIXES)


def _refusal(message: str) -> HttpResponse:
    return HttpResponse(message + "\n", status=403, content_type="text/plain; charset=utf-8")


class OpsNetworksMiddleware:
    """403 for `/admin/` and `/api/` from outside ZOSBOOT_OPS_ALLOWED_NETWORKS (empty: no
    limit), before sessions, login forms or tokens are looked at."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        allowed = settings.ZOSBOOT_OPS_ALLOWED_NETWORKS
        if allowed and is_ops_path(request.path_info):
            try:
                inside = address_in(client_ip(request), allowed)
            except ValueError:
                # A wrong list refuses everyone (`manage.py check` names the bad value) rather
                # than opening the admin to anyone.
                return _refusal(
                    "the ops surface is closed: ZOSBOOT_OPS_ALLOWED_NETWORKS is invalid"
                )
            if not inside:
                return _refusal(
                    "the admin and the API answer only the addresses in "
                    "ZOSBOOT_OPS_ALLOWED_NETWORKS"
                )
        return self.get_response(request)
