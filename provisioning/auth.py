"""Who an automated request is: the API token it presents (`Authorization: Bearer`, or the
`token` cookie the build pipeline's legacy calls send), and whether it may do what it asks."""

from __future__ import annotations

from django.http import HttpRequest

from .models import ApiToken


class TokenRefused(Exception):
    """401: no usable token; 403: a token that may not do this."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def presented_token(request: HttpRequest, *, cookie: bool = False) -> str:
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip()
    return request.COOKIES.get("token", "") if cookie else ""


def authorize(request: HttpRequest, scope: str | None, *, cookie: bool = False) -> ApiToken:
    """The token of the request, allowed `scope` (None: any valid token); TokenRefused
    otherwise."""
    presented = presented_token(request, cookie=cookie)
    where = "the token cookie or " if cookie else ""
    if not presented:
        raise TokenRefused(401, f"no API token: send one in {where}an Authorization: Bearer header")
    token = ApiToken.authenticate(presented)
    if token is None:
        raise TokenRefused(401, "this API token is not valid (unknown, mistyped or revoked)")
    if scope is not None and not token.allows(scope):
        raise TokenRefused(403, f"the API token {token.name} does not have the {scope} scope")
    return token
