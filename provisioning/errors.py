"""The one error a node-facing request ends in when it cannot be answered as asked."""

from __future__ import annotations


class BootError(Exception):
    """A request that cannot be answered with a boot script or file.

    `status` is the HTTP status, `message` what the console shows, `retry_after` (seconds)
    goes with a 503, and `part` names the part of the request at fault (network, farm,
    extra, kernel), so a form can show the message next to its field.
    """

    def __init__(
        self, status: int, message: str, retry_after: int | None = None, part: str = ""
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.retry_after = retry_after
        self.part = part


def reason(error: Exception) -> str:
    """What a refusal says to a person: a ValidationError's first message, any other error's
    text."""
    from django.core.exceptions import ValidationError

    return error.messages[0] if isinstance(error, ValidationError) else str(error)
