"""The service's WSGI application, plus the framework's floor on the same gunicorn:
`/bench-minimal` is the bare view (bench/bare_urls.py) behind Django's handler with only
SecurityMiddleware and CommonMiddleware; `/bench-bare` the same view behind the service's whole
middleware. Everything else is the service as `gunicorn zosboot.wsgi` serves it."""

from __future__ import annotations

from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler

from zosboot.wsgi import application as service

MINIMAL_MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
]


class MinimalHandler(WSGIHandler):
    """Django's handler with the two middlewares of a minimal Django project."""

    def load_middleware(self, is_async: bool = False) -> None:
        everything = settings.MIDDLEWARE
        settings.MIDDLEWARE = MINIMAL_MIDDLEWARE
        try:
            super().load_middleware(is_async)
        finally:
            settings.MIDDLEWARE = everything


minimal = MinimalHandler()


def application(environ, start_response):
    if environ.get("PATH_INFO") == "/bench-minimal":
        return minimal(environ, start_response)
    return service(environ, start_response)
