"""What every request passes before Django reads it.

gunicorn takes `X-Forwarded-Proto: https` from 127.0.0.1 (its default `forwarded_allow_ips`)
as the request's scheme, whatever the service's own settings say. The service decides whom to
believe (`ZOSBOOT_TRUST_PROXY`, through Django's SECURE_PROXY_SSL_HEADER), so the scheme Django
starts from is the connection's own: https only for a TLS socket.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterable

WsgiApp = Callable[[dict, Callable], Iterable[bytes]]


def connection_scheme(application: WsgiApp) -> WsgiApp:
    def wrapped(environ: dict, start_response: Callable) -> Iterable[bytes]:
        sock = environ.get("gunicorn.socket")
        if sock is not None:
            environ["wsgi.url_scheme"] = "https" if isinstance(sock, ssl.SSLSocket) else "http"
        return application(environ, start_response)

    return wrapped
