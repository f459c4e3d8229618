"""The plain-text answers nodes understand: scripts, boot answers, errors (the project's error
pages too), and the decorator that turns a BootError raised in a view into its answer."""

from __future__ import annotations

import functools
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from . import answers
from .errors import BootError

SCRIPT_CONTENT_TYPE = "text/plain; charset=utf-8"


def script_response(script: str, status: int = 200) -> HttpResponse:
    return HttpResponse(script, content_type=SCRIPT_CONTENT_TYPE, status=status)


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
    return error_response(BootError(400, "bad request"))


def error_403(request: HttpRequest, exception=None) -> HttpResponse:
    return error_response(BootError(403, "forbidden"))


def error_404(request: HttpRequest, exception=None) -> HttpResponse:
    return error_response(
        BootError(404, "no such page, the home page of the service lists the URLs")
    )


def error_500(request: HttpRequest) -> HttpResponse:
    return error_response(BootError(500, "internal error, the operators have been told"))
