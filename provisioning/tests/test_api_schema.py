"""The whole v1 API, driven from its own OpenAPI document (schemathesis, property-based and
bounded): no request it can make gets a 5xx or an answer the document does not describe."""

from __future__ import annotations

import pytest
import schemathesis
from django.core.files.base import ContentFile
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.parameters import ParameterLocation

from zosboot.wsgi import application

schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", application)
# Positive and negative cases (the default modes): every answer conforms (status, content
# type, headers, body), and a request that breaks the document is refused, never taken.
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


@pytest.fixture
def world(db, settings):
    settings.DEBUG_PROPAGATE_EXCEPTIONS = True
    """Something for every operation to find: a network with a kernel, a link, a farm, a
    node, history; and a token that may do everything."""
    from provisioning.models import (
        ApiToken,
        BootEvent,
        BranchLink,
        Farm,
        Kernel,
        Network,
        Node,
    )

    kernel = Kernel(name="zero-os-a.efi")
    kernel.file.save(kernel.name, ContentFile(b"a"), save=False)
    kernel.save()
    prod, _ = Network.objects.get_or_create(slug="prod", defaults={"name": "Production"})
    prod.switch_kernel(kernel)
    BranchLink.point("zero-os-latest.efi", kernel)
    farm = Farm.objects.create(farmer_id=1, name="One")
    Node.objects.create(mac="52:54:00:00:00:01", farm=farm, network=prod)
    BootEvent.objects.create(kind="kernel", mac="52:54:00:00:00:01", kernel_name=kernel.name)
    _, secret = ApiToken.issue("schema-test", ["publish", "networks", "nodes"])
    # Requests go straight into the WSGI application, inside the test's transaction: keep
    # the end of each request from closing the test's database connection (Django's test
    # client does the same).
    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
    yield {"Authorization": f"Bearer {secret}"}
    for signal in (request_started, request_finished):
        signal.connect(close_old_connections)


@pytest.mark.django_db
@schema.parametrize()
@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                           HealthCheck.filter_too_much],
)  # fmt: skip
def test_the_api_answers_as_its_document_says(case, world):
    # A case that leaves out the token on purpose (a negative header) goes without it.
    header = case.meta.components.get(ParameterLocation.HEADER) if case.meta else None
    omits_token = header is not None and header.mode.is_negative
    case.call_and_validate(headers={} if omits_token else world, checks=CHECKS)


def test_the_document_is_a_valid_openapi_31_document(client):
    from openapi_spec_validator import validate

    document = client.get("/api/v1/openapi.json").json()
    validate(document)  # raises on any departure from the OpenAPI 3.1 specification
    assert document["info"]["title"] == "zosboot API"
