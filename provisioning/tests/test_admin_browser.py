"""The admin in Chromium under the service's Content-Security-Policy: an operator logs in with
a TOTP code, approves a waiting node by picking its farm in the autocomplete (select2) box,
and opens a node's form with its autocomplete and related-object widgets, without a single
policy violation or script error (provisioning/headers.py). On a 1280 x 800 laptop, the home
shows the fleet and every list keeps its columns in sight (screenshots in test-artifacts/)."""

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


#: Every list of the service, and the names they should fit at 1280 pixels with.
LISTS = (
    "network", "kernel", "branchlink", "pendingswitch", "node", "farm", "latestboot",
    "bootevent", "kernelchange", "linkchange", "kernelrecord", "fleetchange", "apitoken",
    "boottoday",
)  # fmt: skip
LONG_KERNEL = "zero-os-development-amd64-v3.12.4-g4a8b9c0d1e.efi"
LONG_LINK = "zero-os-development-amd64-latest-build.efi"


@pytest.fixture
def laptop_fleet(make_kernel, settings) -> None:
    """A fleet whose names are as long as real ones, on every list, and an operator without
    a second factor (the login has its own test above)."""
    from django.utils import timezone

    from provisioning import running
    from provisioning.models import (
        ApiToken,
        BootEvent,
        BranchLink,
        FleetChange,
        KernelRecord,
        Network,
        PendingSwitch,
    )

    settings.ZOSBOOT_FOUR_EYES_NETWORKS = ["prod"]
    user = get_user_model().objects.create_superuser("ops", "ops@example.org", "s3cret-pass")
    amd = make_kernel(LONG_KERNEL, b"amd64 build")
    older = make_kernel("zero-os-development-amd64-v3.11.9-gffee0011.efi", b"older")
    arm = make_kernel("zero-os-development-arm64-v3.12.4-g4a8b9c0d1e.efi", b"arm", arch="arm64")
    for slug, name in (("prod", "Production"), ("test", "Testnet"), ("dev", "Devnet")):
        Network.objects.update_or_create(slug=slug, defaults={"name": name, "active": True})
    prod = Network.objects.get(slug="prod")
    prod._point(older, None, arch="amd64", user=user, note="first", via="")
    prod._point(amd, None, arch="amd64", user=user, note="release 3.12 after a week on test",
                via="")  # fmt: skip
    prod._point(arm, None, arch="arm64", user=user, note="arm64 release", via="")
    link, _ = BranchLink.point(LONG_LINK, amd, note="publish", via="API token ci-pipeline")
    Network.objects.get(slug="dev").follow_link(link, user=user)
    PendingSwitch.ask(prod, older, None, arch="amd64", user=None, via="API token ops-bot",
                      note="back to 3.11 while we look at the NIC firmware")  # fmt: skip
    farm = Farm.objects.create(farmer_id=4294967295, name="A farm with a rather long name, Ghent")
    now = timezone.now()
    events = []
    for n in range(12):
        mac = f"0c:c4:7a:9e:{n:02x}:{n:02x}"
        Node.objects.create(mac=mac, farm=farm if n % 3 else None, network=prod if n % 3 else None,
                            last_ip=f"2001:db8:4242:1000:0:ffff:c000:{n:04x}",
                            last_seen=now)  # fmt: skip
        FleetChange.objects.create(
            mac=mac,
            farmer_id=farm.farmer_id,
            what=f"approved: farm {farm.farmer_id}, network prod",
            changed_via="API token ops",
        )
        values = dict(created_at=now, kind="kernel", mac=mac, network_id=prod.pk,
                      client_ip=f"2001:db8:4242:1000:0:ffff:c000:{n:04x}", farmer_id=farm.farmer_id,
                      kernel_name=amd.name if n % 2 else older.name)  # fmt: skip
        events.append(values)
        BootEvent.objects.create(
            **values,
            kernel_sha256=amd.sha256,
            user_agent="iPXE/1.21.1+ (g4a8b9) UEFI x86_64 very long agent",
        )
        if n % 4 == 0:  # and its downloads failed, as the node reported (Boots today: why)
            for attempt in (1, 2, 3):
                failed = {**values, "kind": "failed", "kernel_name": ""}
                events.append({**failed, "error": "0x3c092003"})
                BootEvent.objects.create(**failed, token=f"ticket-{n}", attempt=attempt,
                                         error="0x3c092003")  # fmt: skip
    running.note(events)
    KernelRecord.note_for(amd, KernelRecord.Action.REGISTERED, via="API token ci-pipeline",
                          note="published by the release workflow of zero-os/0-core")  # fmt: skip
    ApiToken.issue("ci-pipeline publishing the development builds", ["publish"], user=user)
    return None


@pytest.fixture
def laptop(laptop_fleet, live_server) -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


def test_every_list_keeps_its_columns_in_sight_on_a_1280_pixel_laptop(laptop, live_server):
    from portal.tests.test_browser import ARTIFACTS

    ARTIFACTS.mkdir(exist_ok=True)
    width = 1280
    visit = Visit(laptop, live_server.url, viewport={"width": width, "height": 800})
    page = visit.page
    asked_for_icon = []
    page.on("request", lambda r: asked_for_icon.append(r.url) if "favicon" in r.url else None)
    page.goto("/admin/login/")
    page.get_by_label("Username").fill("ops")
    page.get_by_label("Password").fill("s3cret-pass")
    page.get_by_role("button", name="Log in").click()
    # The home opens on the fleet, above the sections.
    fleet = page.locator("#fleet")
    expect(fleet).to_contain_text(LONG_KERNEL)
    expect(fleet).to_contain_text("1 kernel switch waiting for a second operator")
    assert fleet.evaluate("e => e.scrollWidth <= e.clientWidth")
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    page.screenshot(path=ARTIFACTS / "admin-home-1280.png", full_page=True)

    for model in LISTS:
        page.goto(f"/admin/provisioning/{model}/")
        results = page.locator("#changelist .results")
        results.wait_for()
        # No column hidden behind the list's own scroll bar, nor the page's.
        overflow = results.evaluate("e => e.scrollWidth - e.clientWidth")
        assert overflow <= 0, f"{model}: {overflow} px of columns out of sight"
        right = results.evaluate("e => e.getBoundingClientRect().right")
        edges = page.locator("#result_list thead th").evaluate_all(
            "hs => hs.map(h => [h.className, h.getBoundingClientRect().right])"
        )
        for name, edge in edges:
            assert edge <= right + 1, f"{model}: column {name} ends at {edge} px"
        assert page.evaluate("document.documentElement.scrollWidth") <= width, model
        page.screenshot(path=ARTIFACTS / f"admin-{model}-1280.png", full_page=True)

    # A machine's page: its boots, milestone by milestone, in sight too.
    page.goto("/admin/provisioning/boottoday/?state=failing")
    page.locator("#result_list tbody tr a").first.click()
    expect(page.locator(".zosboot-timeline")).to_contain_text("kernel download failed")
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    page.screenshot(path=ARTIFACTS / "admin-node-timeline-1280.png", full_page=True)

    # A switch asks first, with the machines it reaches, under the same policy.
    page.goto("/admin/provisioning/network/")
    prod = page.locator("#result_list tbody tr").filter(
        has=page.get_by_role("link", name="prod", exact=True)
    )
    prod.get_by_role("checkbox").check()
    page.locator("select[name=action]").select_option("rollback_kernel")
    page.get_by_role("button", name="Go").click()
    expect(page.get_by_role("heading", name="Roll back?")).to_be_visible()
    expect(page.locator(".zosboot-confirm")).to_contain_text("machines")
    page.screenshot(path=ARTIFACTS / "admin-confirm-1280.png", full_page=True)
    assert asked_for_icon == []
    visit.close()
