"""Security headers of the portal and admin pages: a Content-Security-Policy without
'unsafe-inline' (so the pages themselves must carry no inline script or style), nosniff,
Referrer-Policy and frame denial."""

import re
from html.parser import HTMLParser

import pytest

from provisioning.headers import CONTENT_SECURITY_POLICY
from provisioning.models import Farm, Node

pytestmark = pytest.mark.django_db

PORTAL_PAGES = ["/", "/?network=prod&farm=1234", "/kernels/"]
ADMIN_PAGES = [
    "/admin/",
    "/admin/provisioning/node/",
    "/admin/provisioning/node/?pending_from=198.51.100.7",
    "/admin/provisioning/node/add/",
    "/admin/provisioning/farm/",
    "/admin/provisioning/bootevent/",  # a list without actions (read-only)
    "/admin/provisioning/network/",
    "/admin/axes/accessattempt/",
    "/admin/otp_totp/totpdevice/",
]


class InlineCode(HTMLParser):
    """Inline scripts, style elements, style attributes and event handler attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        names = dict(attrs)
        if tag == "style":
            self.found.append("<style>")
        if "style" in names:
            self.found.append(f"<{tag} style=...>")
        self.found += [f"<{tag} {name}=...>" for name in names if name.startswith("on")]
        if tag == "script" and "src" not in names:
            # A data block (json_script) is not run, and CSP does not apply to it.
            self._in_script = names.get("type") not in ("application/json",)

    def handle_data(self, data):
        if self._in_script and data.strip():
            self.found.append(f"<script>{data.strip()[:40]}")

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False


def inline_code(html: str) -> list[str]:
    parser = InlineCode()
    parser.feed(html)
    return parser.found


def test_the_policy_loads_only_from_this_service():
    assert "default-src 'self'" in CONTENT_SECURITY_POLICY
    assert "unsafe-inline" not in CONTENT_SECURITY_POLICY
    assert "unsafe-eval" not in CONTENT_SECURITY_POLICY
    assert "frame-ancestors 'none'" in CONTENT_SECURITY_POLICY


def assert_secure_headers(response) -> None:
    assert response["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Frame-Options"] == "DENY"


@pytest.mark.parametrize("path", PORTAL_PAGES)
def test_portal_pages_carry_the_policy_and_no_inline_code(client, prod, path):
    Farm.objects.create(farmer_id=1234, name="Green Acres")
    response = client.get(path)
    assert response.status_code == 200
    assert_secure_headers(response)
    assert inline_code(response.content.decode()) == []


@pytest.mark.parametrize("path", ADMIN_PAGES)
def test_admin_pages_carry_the_policy_and_no_inline_code(admin_client, prod, path):
    Farm.objects.create(farmer_id=1234, name="Green Acres")
    node = Node.objects.create(mac="52:54:00:ab:cd:ef", last_ip="198.51.100.7")
    response = admin_client.get(path)
    assert response.status_code == 200
    assert_secure_headers(response)
    assert inline_code(response.content.decode()) == []
    change = admin_client.get(f"/admin/provisioning/node/{node.pk}/change/")
    assert inline_code(change.content.decode()) == []


def test_the_admin_login_and_the_approve_form_carry_no_inline_code(client, admin_client, prod):
    login = client.get("/admin/login/")
    assert_secure_headers(login)
    assert inline_code(login.content.decode()) == []
    Farm.objects.create(farmer_id=1234)
    node = Node.objects.create(mac="52:54:00:ab:cd:ef")
    form = admin_client.post(
        "/admin/provisioning/node/", {"action": "assign", "_selected_action": [node.pk]}
    )
    assert form.status_code == 200 and b"Assign a farm and a network" in form.content
    assert inline_code(form.content.decode()) == []


def test_the_admin_login_asking_for_a_code_carries_no_inline_code(client, settings):
    settings.ZOSBOOT_ADMIN_REQUIRE_OTP = True
    login = client.get("/admin/login/")
    assert b"otp_token" in login.content
    assert_secure_headers(login)
    assert inline_code(login.content.decode()) == []


def test_scripts_for_nodes_are_plain_text_without_a_page_policy(client, prod):
    response = client.get("/ipxe/prod/1234")
    assert response["Content-Type"].startswith("text/plain")
    assert "Content-Security-Policy" not in response


def test_the_inline_code_finder_finds_inline_code():
    found = inline_code(
        '<script>alert(1)</script><script src="/x.js"></script>'
        '<script type="application/json">{"a": 1}</script>'
        '<p style="color: red" onclick="x()">x</p><style>p {}</style>'
    )
    assert [re.sub(r"=.*", "", item) for item in found] == [
        "<script>alert(1)",
        "<p style",
        "<p onclick",
        "<style>",
    ]
