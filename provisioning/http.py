"""The plain-text answers nodes understand: scripts, boot answers, errors (the project's error
pages too), and the decorator that turns a BootError raised in a view into its answer."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable

from django.core.exceptions import SuspiciousOperation
from django.http import HttpRequest, HttpResponse

from . import answers
from .clients import client_ip
from .errors import BootError
from .logs import MAX_PATH, loggable

SCRIPT_CONTENT_TYPE = "text/plain; charset=utf-8"
# What Django's never_cache sets, written once: every script answers for this moment only.
NEVER_CACHE = "max-age=0, no-cache, no-store, must-revalidate, private"
LONG_AGO = "Thu, 01 Jan 1970 00:00:00 GMT"


def script_response(script: str, status: int = 200) -> HttpResponse:
    response = HttpResponse(script, content_type=SCRIPT_CONTENT_TYPE, status=status)
    response["Cache-Control"] = NEVER_CACHE
    response["Expires"] = LONG_AGO
    return response


def answer_response(answer: answers.Answer) -> HttpResponse:
    """A boot answer as nodes get it: the script, its status, when to come back."""
    response = script_response(answer.script, answer.status)
    if answer.retry_after is not None:
        response["Retry-After"] = str(answer.retry_after)
    if answer.status >= 400:
        # A deliberate answer, not a failure: Django's request log would report every shed
        # download of a storm as an error. Problems worth an operator's eye are logged
        # where they are found.
        response._has_been_logged = True
    return response


def error_response(error: BootError) -> HttpResponse:
    """Error bodies are iPXE scripts too, so a console (or curl) shows the reason."""
    return answer_response(answers.error(error))


def answers_nodes(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """For views nodes call: a BootError raised anywhere below becomes its readable answer."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        try:
            return view(request, *args, **kwargs)
        except BootError as error:
            return error_response(error)

    return wrapper


# The project's error pages (zosboot/urls.py): iPXE scripts like every other error, so a
# console shows them too. Worded without quotes or apostrophes, which a console masks.


def error_400(request: HttpRequest, exception=None) -> HttpResponse:
    if isinstance(exception, SuspiciousOperation):
        log_security_event(request, exception)
    return error_response(BootError(400, "bad request"))


def error_403(request: HttpRequest, exception=None) -> HttpResponse:
    return error_response(BootError(403, "forbidden"))


def error_404(request: HttpRequest, exception=None) -> HttpResponse:
    return error_response(
        BootError(404, "no such page, the home page of the service lists the URLs")
    )


def error_500(request: HttpRequest) -> HttpResponse:
    response = error_response(BootError(500, "internal error, the operators have been told"))
    # Unlike the deliberate answers above, a 500 is a failure: Django's request log writes it
    # with its traceback (once: it marks the response logged afterwards).
    response._has_been_logged = False
    return response


def log_security_event(request: HttpRequest, exception: SuspiciousOperation) -> None:
    """A request that looked like an attack or a misconfiguration (a Host the service does not
    serve, a body too large, ...), at WARNING on Django's security logger, then answered 400.

    Django would log it at ERROR with a traceback of its own code; what an operator needs is
    what was asked and from where. The client's text is escaped and cut like the access log's.
    """
    logger = logging.getLogger(f"django.security.{type(exception).__name__}")
    # unicode_escape, as Django's own request log does: no newline or control character
    # from the client can reach the log.
    reason = str(exception).encode("unicode_escape").decode("ascii")[:MAX_PATH]
    logger.warning(
        "%s path=%s client=%s",
        reason,
        loggable(request.path, MAX_PATH),
        client_ip(request) or "-",
        extra={"status_code": 400},
    )
