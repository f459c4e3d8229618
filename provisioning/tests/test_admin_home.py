"""The admin's home opens on the fleet: what each network boots per architecture (since when,
by whom), the machines it saw today, nodes and switches waiting, kernels still running that no
network boots, and the views that answer "who runs what"; the service's sections come first,
the security apps below under names an operator reads. Around it: read-only lists titled by
what they list, and pages that name their icon (no /favicon.ico asked for)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from provisioning import running
from provisioning.models import Farm, LatestBoot, Network, Node, PendingSwitch

pytestmark = pytest.mark.django_db


def _machines(network, kernel_name: str, count: int, *, first: int = 0, days_ago: int = 0):
    at = timezone.now() - timedelta(days=days_ago)
    running.note(
        dict(created_at=at, kind="kernel", mac=f"52:54:00:00:{(first + n) >> 8:02x}:"
             f"{(first + n) & 0xFF:02x}", client_ip="10.0.0.1", network_id=network.pk,
             farmer_id=1, kernel_name=kernel_name)
        for n in range(count)
    )  # fmt: skip


@pytest.fixture
def fleet(prod, kernel, make_kernel, admin_user, settings):
    old = make_kernel("zero-os-v3.11.efi", b"3.11")
    _machines(prod, kernel.name, 3)  # today
    _machines(prod, old.name, 2, first=10, days_ago=3)  # still on a kernel nobody boots
    Node.objects.create(mac="52:54:00:ff:00:01")  # waiting for approval
    settings.ZOSBOOT_FOUR_EYES_NETWORKS = ["prod"]
    alice = get_user_model().objects.create_user("alice", is_staff=True)
    newer = make_kernel("zero-os-v3.13.efi", b"3.13")
    PendingSwitch.ask(prod, newer, None, arch="amd64", user=alice, via="", note="")
    return old, newer


def test_the_home_shows_the_fleets_state_first(admin_client, prod, kernel, fleet):
    old, newer = fleet
    page = admin_client.get("/admin/")
    state = page.context["fleet"]
    row = next(s for s in state["networks"] if s.network == prod)
    assert (row.seen_today, row.machines) == (3, 5)
    assert kernel.name in row.boots["amd64"] and "since " in row.boots["amd64"]
    assert state["waiting_nodes"] == 1 and state["switch_count"] == 1
    assert [(r["kernel_name"], r["n"]) for r in state["leftovers"]] == [(old.name, 2)]
    content = page.content.decode()
    assert content.index('id="fleet"') < content.index('id="content-main"')
    assert "1 node waiting for approval" in content
    assert "1 kernel switch waiting for a second operator" in content
    assert f"prod → {newer.name}, asked by alice" in content
    assert f"2 machines</a> still run {old.name}" in content
    assert "/admin/provisioning/latestboot/?seen=today" in content


def test_the_services_sections_come_first_and_the_security_apps_read_well(admin_client, prod):
    content = admin_client.get("/admin/").content.decode()
    sections = re.findall(r'<caption>\s*<a href="/admin/([a-z_]+)/"', content)
    assert sections == ["provisioning", "artifacts", "auth", "otp_totp", "otp_static", "axes"]
    for raw in ("OTP_TOTP", "OTP_STATIC", "Otp_Totp", ">Axes<"):
        assert raw not in content
    assert "Second factor: authenticator apps (TOTP)" in content
    assert "Second factor: backup codes" in content and "Login lockout" in content
    models = re.findall(r'<th scope="row" id="provisioning-([a-z]+)">', content)
    assert models[:4] == ["network", "kernel", "branchlink", "pendingswitch"]
    assert "Pending kernel switches" in content and "switchs" not in content


def test_the_home_counts_todays_boots_by_state_and_links_each_to_boots_today(admin_client, prod):
    now = timezone.now()
    LatestBoot.objects.bulk_create(
        [
            LatestBoot(key="a", mac="52:54:00:00:00:0a", milestone="failed", failures=3,
                       milestone_at=now),
            LatestBoot(key="b", mac="52:54:00:00:00:0b", milestone="start-failed",
                       milestone_at=now),
            LatestBoot(key="c", mac="52:54:00:00:00:0c", milestone="arrived", milestone_at=now),
            LatestBoot(key="d", mac="52:54:00:00:00:0d", milestone="script",
                       milestone_at=now - timedelta(minutes=30)),
        ]
    )  # fmt: skip
    content = admin_client.get("/admin/").content.decode()
    assert (
        '<a href="/admin/provisioning/boottoday/?state=failing">2 machines failing</a>' in content
    )
    assert '<a href="/admin/provisioning/boottoday/?state=stuck">1 machine stuck</a>' in content
    assert "1 machine booted" in content and "0 machines in progress" in content


def test_the_home_costs_the_same_queries_whatever_the_fleets_size(
    admin_client, prod, kernel, make_kernel
):
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert admin_client.get("/admin/").status_code == 200
        return len(captured)

    small = queries()
    for n in range(8):
        Network.objects.create(slug=f"net{n}", name=f"Net {n}").switch_kernel(kernel)
    Farm.objects.bulk_create(Farm(farmer_id=n) for n in range(1, 300))
    _machines(prod, kernel.name, 200)
    _machines(prod, make_kernel("zero-os-old.efi", b"old").name, 50, first=300)
    assert queries() == small


def test_staff_without_rights_on_networks_see_no_fleet(client, prod):
    user = get_user_model().objects.create_user("viewer", password="x", is_staff=True)
    client.force_login(user)
    page = client.get("/admin/")
    assert page.status_code == 200 and "fleet" not in page.context


def test_read_only_lists_are_titled_by_what_they_list(admin_client, prod):
    page = admin_client.get("/admin/provisioning/kernelchange/").content.decode()
    assert "<h1>Kernel changes</h1>" in page and "to change" not in page
    events = admin_client.get("/admin/provisioning/bootevent/").content.decode()
    assert "<h1>Boot events</h1>" in events


def test_admin_pages_name_an_icon_so_browsers_do_not_ask_for_favicon(admin_client, prod):
    network = f"/admin/provisioning/network/{prod.pk}/change/"
    for url in ("/admin/", "/admin/provisioning/node/", network):
        assert '<link rel="icon" href="data:,">' in admin_client.get(url).content.decode()
