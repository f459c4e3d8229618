"""Node requests pay only for what they use: through the service's own WSGI application, a
boot script, a kernel or an image never touches the admin's sessions, users, second factor,
messages, CSRF check or login lockout; the admin still goes through all of them."""

from __future__ import annotations

import io
from wsgiref.util import setup_testing_defaults

import pytest
from django.contrib.auth.middleware import AuthenticationMiddleware
from django.contrib.messages.middleware import MessageMiddleware
from django.contrib.sessions.middleware import SessionMiddleware
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.middleware.csrf import CsrfViewMiddleware

from provisioning.frontdoor import is_node_path
from zosboot.wsgi import application

pytestmark = pytest.mark.django_db


@pytest.fixture
def wsgi():
    """GET through zosboot.wsgi.application itself; (status, headers, body)."""
    # Inside the test's transaction: the end of a request must not close its connection.
    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)

    def get(path: str, **headers: str) -> tuple[str, dict, bytes]:
        environ = {"PATH_INFO": path, "REQUEST_METHOD": "GET", "wsgi.input": io.BytesIO()}
        environ.update({f"HTTP_{k.upper()}": v for k, v in headers.items()})
        setup_testing_defaults(environ)
        environ["HTTP_HOST"] = "127.0.0.1"
        answer = {}

        def start_response(status, response_headers, exc_info=None):
            answer["status"], answer["headers"] = status, dict(response_headers)

        body = b"".join(application(environ, start_response))
        return answer["status"], answer["headers"], body

    yield get
    for signal in (request_started, request_finished):
        signal.connect(close_old_connections)


class Touched(Exception):
    pass


@pytest.fixture
def admin_machinery_refuses(monkeypatch):
    """Every part of the admin's middleware raises if a request reaches it."""

    def refuse(*args, **kwargs):
        raise Touched("a node request reached the admin's middleware")

    for cls, method in (
        (SessionMiddleware, "process_request"),
        (AuthenticationMiddleware, "process_request"),
        (MessageMiddleware, "process_request"),
        (CsrfViewMiddleware, "process_view"),
    ):
        monkeypatch.setattr(cls, method, refuse)
    from axes.middleware import AxesMiddleware
    from django_otp.middleware import OTPMiddleware

    monkeypatch.setattr(AxesMiddleware, "__call__", refuse)
    monkeypatch.setattr(OTPMiddleware, "__call__", refuse)


def test_node_requests_never_touch_the_admin_machinery(
    wsgi, admin_machinery_refuses, prod, kernel, access_log
):
    for path in ("/ipxe/prod/1234", "/provision/52-54-00-00-00-01", kernel.content_path,
                 "/kernel/net/prod.efi", "/healthz"):  # fmt: skip
        status, headers, body = wsgi(path, Cookie="sessionid=abc; csrftoken=def")
        assert status.startswith("200"), (path, status, body[:300])
        assert headers["X-Content-Type-Options"] == "nosniff"
    # The request log line is still written, one per request.
    assert sum("GET /ipxe/prod/1234 200" in r.getMessage() for r in access_log) == 1
    # The same patches stop the admin (a 500: Django answers for the exception): they are live.
    assert wsgi("/admin/login/")[0].startswith("500")


@pytest.mark.parametrize(
    "path,node",
    [
        ("/ipxe/prod/1", True),
        ("/provision/52:54:00:00:00:01", True),
        ("/kernel/net/prod.efi", True),
        ("/kernel/sha256/" + "0" * 64, True),
        ("/iso/prod/1", True),
        ("/uefi-provision", True),
        ("/krn-tar/prod/1", True),
        ("/pxe-kit/prod/1", True),
        ("/healthz", True),
        ("/kernels/", False),
        ("/kernels/current.txt", False),
        ("/admin/", False),
        ("/api/kernel", False),
        ("/metrics", False),
        ("/", False),
        ("/portal/preview", False),
    ],
)
def test_which_paths_take_the_node_path(path, node):
    assert is_node_path(path) is node
