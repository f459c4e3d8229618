"""Where the ops surface answers: /admin/ and /api/ only from ZOSBOOT_OPS_ALLOWED_NETWORKS,
decided on the client address the trusted proxy saw; node-facing URLs are unaffected."""

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from provisioning.models import Node

pytestmark = pytest.mark.django_db

OPS_REQUESTS = [
    ("get", "/admin/"),
    ("get", "/admin/login/"),
    ("post", "/admin/login/"),
    ("get", "/admin"),
    ("get", "/api/v1/kernels"),
    ("get", "/api/v1/openapi.json"),
    ("post", "/api/kernel"),
    ("get", "/api/symlink/zero-os-development.efi/zero-os-x.efi"),
]
OUTSIDE = "192.0.2.10"
INSIDE = "10.1.2.3"


@pytest.fixture
def ops_networks(settings):
    settings.ZOSBOOT_OPS_ALLOWED_NETWORKS = ["10.0.0.0/8", "2001:db8::/32"]


@pytest.mark.parametrize(("method", "path"), OPS_REQUESTS)
def test_ops_surface_refuses_an_address_outside_the_list(client, ops_networks, method, path):
    response = getattr(client, method)(path, REMOTE_ADDR=OUTSIDE, HTTP_COOKIE="token=secret")
    assert response.status_code == 403
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert b"ZOSBOOT_OPS_ALLOWED_NETWORKS" in response.content
    # Refused before any login form or session: nothing of the admin was rendered or set.
    assert b"csrfmiddlewaretoken" not in response.content
    assert "sessionid" not in response.cookies and "csrftoken" not in response.cookies


def test_ops_surface_answers_an_address_inside_the_list(client, ops_networks):
    assert client.get("/admin/login/", REMOTE_ADDR=INSIDE).status_code == 200
    assert client.get("/admin/", REMOTE_ADDR=INSIDE).status_code == 302  # to the login form
    assert client.get("/api/v1/kernels", REMOTE_ADDR=INSIDE).status_code == 401  # token check
    assert client.post("/api/kernel", REMOTE_ADDR=INSIDE).status_code == 401
    assert client.get("/admin/login/", REMOTE_ADDR="2001:db8::7").status_code == 200


def test_without_a_list_the_ops_surface_answers_anywhere(client, settings):
    settings.ZOSBOOT_OPS_ALLOWED_NETWORKS = []
    assert client.get("/admin/login/", REMOTE_ADDR=OUTSIDE).status_code == 200
    assert client.get("/api/v1/kernels", REMOTE_ADDR=OUTSIDE).status_code == 401


def test_node_facing_urls_answer_everyone(client, ops_networks, prod):
    for path in ("/ipxe/prod/1234", "/provision/525400abcdef", "/healthz", "/", "/kernels/"):
        assert client.get(path, REMOTE_ADDR=OUTSIDE).status_code == 200, path
    assert client.get("/kernel/net/prod.efi", REMOTE_ADDR=OUTSIDE).status_code == 200
    assert Node.objects.filter(mac="52:54:00:ab:cd:ef").exists()
    # /metrics keeps its own list: loopback may read it, whatever the ops list says.
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 200
    metrics = client.get("/metrics", REMOTE_ADDR=INSIDE)
    assert metrics.status_code == 403 and b"ZOSBOOT_METRICS_ALLOWED_NETWORKS" in metrics.content


def test_behind_the_trusted_proxy_the_forwarded_address_decides(client, ops_networks, settings):
    settings.ZOSBOOT_TRUST_PROXY = True
    proxy = {"REMOTE_ADDR": "127.0.0.1"}
    allowed = client.get("/admin/login/", HTTP_X_FORWARDED_FOR=INSIDE, **proxy)
    assert allowed.status_code == 200
    # Only the entry the proxy added counts; what the client put before it does not.
    spoofed = client.get("/admin/login/", HTTP_X_FORWARDED_FOR=f"{INSIDE}, {OUTSIDE}", **proxy)
    assert spoofed.status_code == 403
    assert client.get("/admin/login/", **proxy).status_code == 403  # the proxy itself: outside


def test_without_a_trusted_proxy_a_forwarded_header_is_ignored(client, ops_networks, settings):
    settings.ZOSBOOT_TRUST_PROXY = False
    response = client.get("/admin/login/", REMOTE_ADDR=OUTSIDE, HTTP_X_FORWARDED_FOR=INSIDE)
    assert response.status_code == 403


def test_an_invalid_list_closes_the_ops_surface_and_the_check_names_the_value(client, settings):
    settings.ZOSBOOT_OPS_ALLOWED_NETWORKS = ["10.0.0.0/8", "10.0.0.300/32"]
    response = client.get("/admin/login/", REMOTE_ADDR=INSIDE)
    assert response.status_code == 403 and b"invalid" in response.content
    assert client.get("/healthz", REMOTE_ADDR=INSIDE).status_code == 200
    with pytest.raises(SystemCheckError, match=r"provisioning.E010.*'10.0.0.300/32'"):
        call_command("check")


def test_an_invalid_metrics_list_is_named_by_the_check(settings):
    settings.ZOSBOOT_METRICS_ALLOWED_NETWORKS = ["127.0.0.0/8", "localhost"]
    with pytest.raises(SystemCheckError, match=r"provisioning.E011.*'localhost'"):
        call_command("check")
