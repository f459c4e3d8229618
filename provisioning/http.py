"""What a view needs from the request: the base URL to write into scripts, the client's address,
and the plain-text responses nodes understand."""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.http.request import split_domain_port, validate_host

from .errors import BootError
from .scripts import BootTarget, render_boot_script, render_error_script, resolve_target

SCRIPT_CONTENT_TYPE = "text/plain; charset=utf-8"


def public_base_url(request: HttpRequest) -> str:
    """The URL nodes must use to reach this service; never decided by an arbitrary Host header.

    ZOSBOOT_PUBLIC_URL wins. Otherwise the request's host is used only when DJANGO_ALLOWED_HOSTS
    names it explicitly (a wildcard would let any client point nodes at another server).
    """
    if settings.ZOSBOOT_PUBLIC_URL:
        return settings.ZOSBOOT_PUBLIC_URL
    host = request.get_host()  # validated against ALLOWED_HOSTS (DisallowedHost -> 400)
    domain, _port = split_domain_port(host)
    explicit = [pattern for pattern in settings.ALLOWED_HOSTS if pattern != "*"]
    if settings.DEBUG:
        explicit += [".localhost", "127.0.0.1", "[::1]"]
    if not validate_host(domain, explicit):
        raise BootError(
            400,
            "this host name is not one the service may name in boot scripts; "
            "set ZOSBOOT_PUBLIC_URL or list the host in DJANGO_ALLOWED_HOSTS",
        )
    return f"{request.scheme}://{host}"


def boot_script_for(
    request: HttpRequest,
    net: str,
    farm: str | None = None,
    extra: str | None = None,
    kernel: str | None = None,
) -> tuple[BootTarget, str]:
    """The target and script of `/<anything>/<net>[/<farm>[/<extra>[/<kernel>]]]`.

    Scripts and images use this one function, so an image holds exactly what `/ipxe/...`
    serves for the same path. Raises BootError.
    """
    target = resolve_target(net, farm, extra, kernel)
    return target, render_boot_script(target, public_base_url(request))


def client_ip(request: HttpRequest) -> str | None:
    """The node's address: the proxy's view of it when the proxy is trusted."""
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


def script_response(script: str, status: int = 200) -> HttpResponse:
    return HttpResponse(script, content_type=SCRIPT_CONTENT_TYPE, status=status)


def error_response(error: BootError) -> HttpResponse:
    """Error bodies are iPXE scripts too, so a console (or curl) shows the reason."""
    response = script_response(render_error_script(error.status, error.message), error.status)
    if error.status == 503:
        response["Retry-After"] = str(error.retry_after or 60)
    # A deliberate answer, not a failure: Django's request log would report every shed
    # download of a storm as an error. Problems worth an operator's eye are logged where
    # they are found.
    response._has_been_logged = True
    return response


def answers_nodes(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """For views nodes call: a BootError raised anywhere below becomes its readable answer."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        try:
            return view(request, *args, **kwargs)
        except BootError as error:
            return error_response(error)

    return wrapper
