"""The versioned JSON API (`/api/v1/`): what ops do in the admin, for scripts.

Built on django-ninja: typed request and response schemas, validation errors as 422 with the
field at fault, and the OpenAPI document generated from the same declarations
(`/api/v1/openapi.json`), so the document cannot drift from the code. Every call carries an
API token (`Authorization: Bearer`); reading needs any valid token, changing needs its scope.
Every change goes through the model methods the admin uses, so the audit trail is the same
whoever acted (the token's name stands where an admin user's would).
"""

from __future__ import annotations

from django.http import HttpRequest
from ninja import NinjaAPI
from ninja.errors import HttpError
from ninja.security.http import HttpAuthBase

from ..auth import TokenRefused, authorize
from ..models import ApiToken


class _Token(HttpAuthBase):
    """A bearer API token allowed `scope` (None: any valid token), checked by the one rule
    the legacy calls use too (provisioning.auth), with its 401/403 and reason."""

    openapi_scheme = "bearer"

    def __init__(self, scope: str | None) -> None:
        super().__init__()
        self.scope = scope

    def __call__(self, request: HttpRequest) -> ApiToken:
        try:
            request.api_token = authorize(request, self.scope)
        except TokenRefused as refused:
            raise HttpError(refused.status, refused.message) from None
        return request.api_token


can_read = _Token(None)
can_publish = _Token(ApiToken.Scope.PUBLISH)
can_switch_networks = _Token(ApiToken.Scope.NETWORKS)
can_manage_nodes = _Token(ApiToken.Scope.NODES)

api = NinjaAPI(  # routes: kernels.py, networks.py, fleet.py
    title="zosboot API",
    version="1",
    description=__doc__,
    urls_namespace="api-v1",
    docs_url=None,  # the service loads nothing from other sites; the document is enough
    openapi_url="/openapi.json",
)


def via(request: HttpRequest) -> str:
    """How the audit trail names what acted: the token."""
    return request.api_token.label


from . import fleet, kernels, networks  # noqa: E402, F401  (each adds its operations to api)
