"""The Content-Security-Policy of every HTML page (the portal, the admin).

The pages load nothing from other hosts and run no inline script or style: scripts and
stylesheets are static files of this service (`data:` images only for the portal's empty
favicon, which keeps browsers from asking for /favicon.ico). The browser enforces it. The
other security headers come from Django (SecurityMiddleware: nosniff, Referrer-Policy,
Cross-Origin-Opener-Policy; XFrameOptionsMiddleware: DENY).
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "img-src 'self' data:",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


class ContentSecurityPolicyMiddleware:
    """Adds CONTENT_SECURITY_POLICY to HTML responses that do not set their own."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.get("Content-Type", "").startswith("text/html"):
            response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        return response
