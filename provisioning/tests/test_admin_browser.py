"""The admin in Chromium under the service's Content-Security-Policy: an operator logs in with
a TOTP code, approves a waiting node by picking its farm in the autocomplete (select2) box,
and opens a node's form with its autocomplete and related-object widgets, without a single
policy violation or script error (provisioning/headers.py)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from django.contrib.auth import get_user_model
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice
from playwright.sync_api import Browser, expect, sync_playwright

from portal.tests.test_browser import CHROMIUM, CHROMIUM_FLAGS, Visit
from provisioning.headers import CONTENT_SECURITY_POLICY
from provisioning.models import Farm, Node

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

MAC = "52:54:00:aa:bb:cc"


@pytest.fixture
def operator(prod, settings) -> bytes:
    """Staff with a TOTP device, a farm to pick, a network and a node waiting; the TOTP key."""
    settings.ZOSBOOT_ADMIN_REQUIRE_OTP = True
    user = get_user_model().objects.create_superuser("ops", "ops@example.org", "s3cret-pass")
    device = TOTPDevice.objects.create(user=user, name="phone", confirmed=True)
    Farm.objects.create(farmer_id=4321, name="Browser farm")
    Farm.objects.create(farmer_id=99, name="Other farm")
    Node.objects.create(mac=MAC, last_ip="198.51.100.7")
    return device.bin_key


@pytest.fixture
def browser(operator, live_server) -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


def test_operator_logs_in_with_a_code_and_approves_a_node_under_the_policy(
    browser, live_server, operator
):
    visit = Visit(browser, live_server.url, viewport={"width": 1280, "height": 900})
    page = visit.page
    response = page.goto("/admin/")
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    page.get_by_label("Username").fill("ops")
    page.get_by_label("Password").fill("s3cret-pass")
    page.get_by_label("OTP Token").fill(f"{totp(operator):06d}")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Boot service administration")).to_be_visible()

    page.goto("/admin/provisioning/node/?status=pending")
    expect(page.get_by_text("198.51.100.7 (1)")).to_be_visible()  # waiting nodes by address
    page.get_by_role("checkbox", name=re.compile("Select this object")).first.check()
    page.locator("select[name=action]").select_option("assign")
    page.get_by_role("button", name="Go").click()
    expect(page.get_by_role("heading", name="Assign a farm and a network")).to_be_visible()

    # The farm box is the admin's autocomplete (select2, fed by the farm admin's search).
    page.locator(".select2-selection").first.click()
    page.locator(".select2-search__field").fill("4321")
    page.get_by_role("option", name=re.compile("4321 Browser farm")).click()
    page.get_by_label("Network").select_option(label="prod")
    page.get_by_role("button", name="Apply").click()
    expect(page.get_by_text(re.compile(r"1 node\(s\) assigned to farm 4321"))).to_be_visible()

    page.goto("/admin/provisioning/node/")
    page.get_by_role("link", name=MAC).click()
    expect(page.locator(".select2-selection").first).to_contain_text("4321 Browser farm")
    page.locator("#add_id_farm").wait_for()  # the related-object widget's "add" link
    visit.close()
