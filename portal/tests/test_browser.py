"""The portal in a real browser: Debian's Chromium driven by Playwright, against a live server.

A farmer picks a network, types a farm ID, watches the preview follow, downloads the ISO and
gets an image whose embedded script names that farm; a wrong farm ID gets its reason inline.
The same flow is repeated with JavaScript off. Screenshots go to test-artifacts/.

Every request the page makes is checked to go to the test server: nothing may come from a CDN
(the page has to work on an air-gapped management network), and the browser reaches nothing
else. The pages run under the service's Content-Security-Policy, enforced by Chromium: any
violation (an inline script or style, a load from elsewhere) fails the test. Database work
happens before the browser starts: Playwright's sync API runs an event loop in this thread,
where Django refuses ORM calls.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from playwright.sync_api import Browser, Page, expect, sync_playwright

from portal.forms import sentence
from provisioning.models import Farm, Network
from provisioning.validators import parse_farmer_id

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--no-sandbox",  # the tests run as root
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]
FARM = "4321"
FARM_NAME = "Browser test farm"


@pytest.fixture
def networks(make_kernel) -> None:
    """Testnet boots a kernel (and is not preselected: picking it is part of the test)."""
    kernel = make_kernel()
    # Networks come from a data migration, which a flush by an earlier transactional test
    # removes; create them when missing.
    for slug, name in (("prod", "Production"), ("test", "Testnet"), ("qa", "QA-net")):
        Network.objects.update_or_create(slug=slug, defaults={"name": name, "active": True})
    for slug in ("prod", "test"):
        Network.objects.get(slug=slug).switch_kernel(kernel)
    Farm.objects.create(farmer_id=int(FARM), name=FARM_NAME)


@pytest.fixture
def browser(networks, live_server) -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


class Visit:
    """A page in a fresh browser context that lets through only requests to the test server."""

    def __init__(self, browser: Browser, base_url: str, **context_options) -> None:
        self.base_url = base_url
        self.foreign: list[str] = []
        self.errors: list[str] = []
        self.context = browser.new_context(
            base_url=base_url, accept_downloads=True, **context_options
        )
        self.context.route("**/*", self._only_test_server)
        # Chromium reports each violation of the page's policy as an event (and a console
        # error); both end up in `errors`.
        self.context.add_init_script(
            "document.addEventListener('securitypolicyviolation', e => console.error("
            "'CSP violation: ' + e.violatedDirective + ' ' + e.blockedURI))"
        )
        self.page: Page = self.context.new_page()
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.on(
            "console",
            lambda msg: self.errors.append(msg.text) if msg.type == "error" else None,
        )

    def _only_test_server(self, route) -> None:
        if route.request.url.startswith(self.base_url + "/"):
            route.continue_()
        else:
            self.foreign.append(route.request.url)
            route.abort()

    def close(self) -> None:
        self.context.close()
        assert self.foreign == [], f"requests outside the test server: {self.foreign}"
        assert self.errors == [], f"errors in the page: {self.errors}"


def layout_box(locator) -> list[float]:
    """Position and size in the document (not the viewport, which scrolls on a click)."""
    return locator.evaluate(
        "e => { const r = e.getBoundingClientRect();"
        " return [r.x + scrollX, r.y + scrollY, r.width, r.height]; }"
    )


def embedded_script(iso: Path, tmp_path: Path) -> str:
    """The script at the ISO's root, read back with xorriso."""
    out = tmp_path / "zos.ipxe"
    subprocess.run(
        ["xorriso", "-osirrox", "on", "-indev", str(iso), "-extract", "/zos.ipxe", str(out)],
        capture_output=True, timeout=60, check=True,
    )  # fmt: skip
    return out.read_text()


def download_iso(page: Page, tmp_path: Path) -> Path:
    link = page.get_by_role("link", name=re.compile(r"Download zos-test-4321\.iso"))
    expect(link).to_have_attribute("href", f"/iso/test/{FARM}")
    with page.expect_download() as info:
        link.click()
    download = info.value
    assert download.suggested_filename == f"zos-test-{FARM}.iso"
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    return saved


def not_a_number() -> str:
    with pytest.raises(ValidationError) as refused:
        parse_farmer_id("12a")
    return sentence(refused.value.messages[0])


def test_farmer_gets_an_iso_for_the_farm_typed_and_sees_its_sha256(browser, live_server, tmp_path):
    ARTIFACTS.mkdir(exist_ok=True)
    visit = Visit(browser, live_server.url, viewport={"width": 1280, "height": 900})
    page = visit.page
    response = page.goto("/")
    assert "default-src 'self'" in response.headers["content-security-policy"]
    expect(page.get_by_role("heading", name="Boot your server with Zero-OS")).to_be_visible()
    downloads_heading = page.locator("#step-2")
    before = layout_box(downloads_heading)
    preview_box = layout_box(page.locator("#preview-script"))

    page.get_by_role("radio", name=re.compile("Testnet")).check()
    page.get_by_label("Farm ID").fill(FARM)

    preview = page.locator("#preview-script")
    expect(preview).to_contain_text(f"runmode=test panic=7200 farmer_id={FARM}")
    expect(page.locator("#msg-farm")).to_have_text(f"Farm {FARM}: {FARM_NAME}")
    expect(page.locator("#preview-status")).to_have_text(
        f"Boot script for network test, farm {FARM}."
    )
    # The page keeps its shape while it fills in: nothing below the form moved.
    assert layout_box(downloads_heading) == before
    assert layout_box(page.locator("#preview-script")) == preview_box
    # The address bar holds the same query the form submits without JavaScript.
    assert page.url.endswith(f"/?network=test&farm={FARM}&extra=")

    card = page.locator('[data-format="iso"]')
    card_box = layout_box(card)
    iso = download_iso(page, tmp_path)
    digest = hashlib.sha256(iso.read_bytes()).hexdigest()
    expect(card.locator("[data-status] code")).to_have_text(digest)
    assert layout_box(card) == card_box, "showing the sha256 moved or resized the card"
    # The image chains the very script the page previews, at the service's address.
    script = embedded_script(iso, tmp_path)
    assert f"{live_server.url}/ipxe/test/{FARM} ||" in script
    assert script == page.locator("#image-script").text_content()

    page.screenshot(path=ARTIFACTS / "portal-desktop.png", full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.screenshot(path=ARTIFACTS / "portal-phone.png", full_page=True)
    visit.close()


def test_invalid_farm_id_gets_the_reason_inline_and_no_download(browser, live_server):
    ARTIFACTS.mkdir(exist_ok=True)
    visit = Visit(browser, live_server.url, viewport={"width": 1280, "height": 900})
    page = visit.page
    page.goto("/")
    farm = page.get_by_label("Farm ID")
    farm.fill(FARM)
    expect(page.locator("#preview-script")).to_contain_text(f"farmer_id={FARM}")

    farm.fill("12a")
    expect(page.locator("#msg-farm")).to_have_text(not_a_number())
    expect(farm).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#preview-script")).to_have_text("")
    expect(page.locator('[data-format="iso"] .button')).to_have_attribute("aria-disabled", "true")
    expect(page.locator("a[data-download]")).to_have_count(0)
    page.screenshot(path=ARTIFACTS / "portal-invalid.png", full_page=True)

    farm.fill(FARM)
    expect(page.locator("#msg-farm")).to_have_text(f"Farm {FARM}: {FARM_NAME}")
    expect(farm).not_to_have_attribute("aria-invalid", "true")
    visit.close()


def test_without_javascript_the_form_submits_and_the_iso_link_downloads(
    browser, live_server, tmp_path
):
    visit = Visit(
        browser,
        live_server.url,
        java_script_enabled=False,
        viewport={"width": 390, "height": 844},
    )
    page = visit.page
    page.goto("/")
    page.get_by_role("radio", name=re.compile("Testnet")).check()
    page.get_by_label("Farm ID").fill("12a")
    page.get_by_role("button", name="Show my boot image").click()
    expect(page.locator("#msg-farm")).to_have_text(not_a_number())

    page.get_by_label("Farm ID").fill(FARM)
    page.get_by_role("button", name="Show my boot image").click()
    expect(page.locator("#preview-script")).to_contain_text(f"farmer_id={FARM}")
    assert page.url.endswith(f"/?network=test&farm={FARM}&extra=")

    script = embedded_script(download_iso(page, tmp_path), tmp_path)
    assert f"/ipxe/test/{FARM} ||" in script
    assert script == page.locator("#image-script").text_content()
    visit.close()


BOOTED, FAILING = "52:54:00:aa:00:01", "52:54:00:aa:00:02"
NODE_ADDRESS = "198.51.100.7"


@pytest.fixture
def reported_boots(networks) -> None:
    """Two machines of the farm booted through the service and said how it went: one
    booted, one whose kernel downloads failed. Done before the browser starts (see above)."""
    from django.test import Client

    from provisioning import reports

    reports.window.__init__()
    reports.seen.__init__()
    node = Client(REMOTE_ADDR=NODE_ADDRESS)
    for mac, milestones in (
        (BOOTED, ["arrived?card=0&try=1&t0=100&t1=109"]),
        (FAILING, [f"failed?card=0&try={n}&err=0x3c092003" for n in (1, 2, 3)]),
    ):
        script = node.get(f"/ipxe/test/{FARM}").content.decode()
        token = re.search(r"set zos_report /boot-report/([0-9a-f.]+)\n", script).group(1)
        for milestone in milestones:
            answer = node.get(f"/boot-report/{token}/{milestone}&mac={mac.replace(':', '-')}")
            assert answer.content == b"ok\n", answer.content


def test_a_farmer_finds_the_farm_page_and_it_shows_nothing_an_attacker_could_use(
    reported_boots, browser, live_server
):
    ARTIFACTS.mkdir(exist_ok=True)
    visit = Visit(browser, live_server.url, viewport={"width": 1280, "height": 900})
    page = visit.page
    page.goto("/")
    page.get_by_label("Farm ID").fill(FARM)
    link = page.get_by_role("link", name=f"See how each of farm {FARM}'s machines booted")
    link.click()
    expect(page.get_by_role("heading", name=f"Farm {FARM}: {FARM_NAME}")).to_be_visible()
    assert page.url == f"{live_server.url}/farms/{FARM}/"

    rows = page.locator("table.farm-machines tbody tr")
    expect(rows).to_have_count(2)
    booted = rows.filter(has_text="..:aa:00:01")
    expect(booted).to_contain_text("booted")
    expect(booted).to_contain_text("its Zero-OS kernel arrived in 9 s")
    failing = rows.filter(has_text="..:aa:00:02")
    expect(failing).to_contain_text("failing")
    expect(failing).to_contain_text("Downloading the kernel failed 3 times")
    expect(failing).to_contain_text("check that this network reaches the boot service")

    # Farm IDs are public: no address, no whole MAC, no way into the admin.
    text = page.content()
    for secret in (NODE_ADDRESS, BOOTED, FAILING, BOOTED.replace(":", "-"), "/admin"):
        assert secret not in text, secret
    hrefs = page.locator("a").evaluate_all("links => links.map(a => a.getAttribute('href'))")
    assert all(not href.startswith(("/admin", "/api")) for href in hrefs), hrefs

    page.screenshot(path=ARTIFACTS / "portal-farm.png", full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.screenshot(path=ARTIFACTS / "portal-farm-phone.png", full_page=True)
    visit.close()
