"""What every request passes before Django reads it.

- **The connection's own scheme.** gunicorn takes `X-Forwarded-Proto: https` from 127.0.0.1
  (its default `forwarded_allow_ips`) as the request's scheme, whatever the service's own
  settings say. The service decides whom to believe (`ZOSBOOT_TRUST_PROXY`, through Django's
  SECURE_PROXY_SSL_HEADER), so the scheme Django starts from is the connection's: https only
  for a TLS socket.
- **Node requests pay only for what they use.** Boot scripts, provisioning answers, kernels,
  images and the health checks need no session, user, second factor, message, CSRF check or
  login lockout. They go to a Django handler of their own whose middleware is
  `NODE_MIDDLEWARE` (the request log line and the security headers); the admin, the API, the
  portal and /metrics keep the whole `MIDDLEWARE`. Both resolve the same URLs.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterable

from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler

WsgiApp = Callable[[dict, Callable], Iterable[bytes]]

#: Where nodes (and load balancers) ask: a path starting with one of these.
NODE_PREFIXES = (
    "/ipxe/", "/provision/", "/kernel/", "/boot-report/", "/iso/", "/usb/", "/uefi", "/krn",
    "/pxe-kit", "/healthz", "/readyz",
)  # fmt: skip


def is_node_path(path: str) -> bool:
    return path.startswith(NODE_PREFIXES)


class NodeHandler(WSGIHandler):
    """Django's WSGI handler with `NODE_MIDDLEWARE` instead of `MIDDLEWARE`, resolving against
    the node URLs alone (provisioning.node_urls)."""

    urlconf = "provisioning.node_urls"

    def get_response(self, request):
        request.urlconf = self.urlconf
        return super().get_response(request)

    def load_middleware(self, is_async: bool = False) -> None:
        # Django builds the chain from settings.MIDDLEWARE; this handler's chain is built once,
        # when the worker starts, from the node list.
        everything = settings.MIDDLEWARE
        settings.MIDDLEWARE = settings.NODE_MIDDLEWARE
        try:
            super().load_middleware(is_async)
        finally:
            settings.MIDDLEWARE = everything


def by_path(nodes: WsgiApp, everyone: WsgiApp) -> WsgiApp:
    """Node paths to `nodes`, the rest to `everyone`."""

    def dispatch(environ: dict, start_response: Callable) -> Iterable[bytes]:
        handler = nodes if is_node_path(environ.get("PATH_INFO", "")) else everyone
        return handler(environ, start_response)

    return dispatch


def connection_scheme(application: WsgiApp) -> WsgiApp:
    def wrapped(environ: dict, start_response: Callable) -> Iterable[bytes]:
        sock = environ.get("gunicorn.socket")
        if sock is not None:
            environ["wsgi.url_scheme"] = "https" if isinstance(sock, ssl.SSLSocket) else "http"
        return application(environ, start_response)

    return wrapped
