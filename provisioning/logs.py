"""The service's log: one line per request, and the JSON form of every log record.

`RequestLogMiddleware` writes one line per request to the `zosboot.access` logger: method,
path, status, duration, the client's address as the trusted proxy saw it, and the network,
farm and node (MAC) the answer was about, which the views hand over with `note()`.

What a client sent is never logged whole: the path is written the way a URL carries it
(percent-encoded, so no space, quote, newline or other control character can appear) and cut
at `MAX_PATH` characters, so a hostile path can neither forge a second line nor add a field.
`ZOSBOOT_LOG_FORMAT=json` makes every record of the service one JSON object per line
(`JsonFormatter`, chosen in the settings' LOGGING).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from urllib.parse import quote

from django.http import HttpRequest, HttpResponse

from .clients import client_ip

if TYPE_CHECKING:
    from .history import Event

logger = logging.getLogger("zosboot.access")

MAX_PATH = 1024
MAX_METHOD = 16
CUT_MARK = "[cut]"  # "[" is always percent-encoded in a path, so the mark cannot be forged
# RFC 3986 path characters stay readable; everything else is percent-encoded.
_PATH_SAFE = "/:@!$&()*+,;="


def note(request: HttpRequest, event: Event | None) -> None:
    """Tell the request's log line which network, farm and node the answer was about."""
    if event is None:
        return
    mac = event.mac or (event.node.mac if event.node else "")
    request._zosboot_log_about = {
        "network": event.network.slug if event.network else None,
        "farm": event.farmer_id,
        "node": mac or None,
    }


def loggable(text: str, limit: int) -> str:
    """`text` as a URL would carry it, at most `limit` characters plus the cut mark."""
    # Encoding only one character past the limit keeps a huge path cheap to log; an encoded
    # character is never shorter than the original, so that is enough to know it was cut.
    encoded = quote(text[: limit + 1], safe=_PATH_SAFE, errors="backslashreplace")
    if len(encoded) <= limit:
        return encoded
    encoded = encoded[:limit]
    tail = encoded.rfind("%", -2)
    if tail != -1:  # never end in half an escape ("%2"), which would read as something else
        encoded = encoded[:tail]
    return encoded + CUT_MARK


def request_fields(request: HttpRequest, status: int, seconds: float) -> dict:
    """What the log says of one request; every value is safe to print as it is."""
    about = getattr(request, "_zosboot_log_about", {})
    return {
        "method": loggable(request.method or "", MAX_METHOD),
        "path": loggable(request.path, MAX_PATH),
        "status": status,
        "duration_ms": round(seconds * 1000, 1),
        "client": client_ip(request),
        "network": about.get("network"),
        "farm": about.get("farm"),
        "node": about.get("node"),
    }


def text_line(fields: dict) -> str:
    """`GET /ipxe/prod/1234 200 3.1ms client=10.0.2.15 network=prod farm=1234`"""
    line = (
        f"{fields['method']} {fields['path']} {fields['status']} {fields['duration_ms']}ms "
        f"client={fields['client'] or '-'}"
    )
    for name in ("network", "farm", "node"):
        if fields[name] is not None:
            line += f" {name}={fields[name]}"
    return line


class RequestLogMiddleware:
    """One log line per request, written once the answer is ready.

    First in MIDDLEWARE, so the status is the one the client gets and the duration covers
    every layer. For a file the service streams itself, the duration is the time to start
    the transfer; the front server's own log has the transfers it sends.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        fields = request_fields(request, response.status_code, time.perf_counter() - started)
        logger.info(text_line(fields), extra={"access": fields})
        return response


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and for a request line its
    fields (method, path, status, duration_ms, client, network, farm, node)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(getattr(record, "access", {}))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        # json.dumps escapes every control character, so the object stays on one line.
        return json.dumps(entry)
