"""Moving through the records: a node to its boot events, latest boot and trail (its History
button too) and to what it runs; a latest boot to its node. The filters an operator expects
at 5,000 nodes (not seen for N days, a date range, seen today)."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import quote

import pytest
from django.utils import timezone

from provisioning import running
from provisioning.models import BootEvent, Farm, FleetChange, LatestBoot, Node

pytestmark = pytest.mark.django_db

MAC = "52:54:00:00:12:34"


def _booted(network, kernel, mac=MAC, *, at=None) -> None:
    running.note([dict(created_at=at or timezone.now(), kind="kernel", mac=mac,
                       client_ip="10.1.2.3", network_id=network.pk, farmer_id=7,
                       kernel_name=kernel.name)])  # fmt: skip


def test_a_node_links_to_its_boot_events_latest_boot_and_trail(admin_client, prod, kernel):
    node = Node.objects.create(mac=MAC, farm=Farm.objects.create(farmer_id=7), network=prod)
    _booted(prod, kernel)
    latest = LatestBoot.objects.get()
    page = admin_client.get(f"/admin/provisioning/node/{node.pk}/change/").content.decode()
    assert f'href="/admin/provisioning/bootevent/?mac={quote(MAC)}"' in page
    assert f'href="/admin/provisioning/latestboot/{latest.pk}/change/"' in page
    assert f'href="/admin/provisioning/fleetchange/?mac={quote(MAC)}"' in page
    # The links lead to the node's rows.
    BootEvent.objects.create(kind="kernel", mac=MAC)
    BootEvent.objects.create(kind="kernel", mac="52:54:00:00:00:09")
    events = admin_client.get("/admin/provisioning/bootevent/", {"mac": MAC})
    assert [e.mac for e in events.context["cl"].result_list] == [MAC]


def test_a_latest_boot_links_to_its_node_and_boot_events(admin_client, prod, kernel):
    node = Node.objects.create(mac=MAC)
    _booted(prod, kernel)
    _booted(prod, kernel, mac="52:54:00:00:00:09")  # a machine with no node
    page = admin_client.get("/admin/provisioning/latestboot/").content.decode()
    assert f'<a href="/admin/provisioning/node/{node.pk}/change/" class="nowrap">{MAC}</a>' in page
    assert f"/admin/provisioning/bootevent/?mac={quote('52:54:00:00:00:09')}" in page
    assert "/admin/provisioning/node/None" not in page


def test_a_nodes_history_button_shows_its_trail_after_disabling_and_enabling(admin_client, prod):
    farm = Farm.objects.create(farmer_id=77)
    node = Node.objects.create(mac=MAC, farm=farm, network=prod)
    for action in ("disable", "enable"):
        admin_client.post(
            "/admin/provisioning/node/", {"action": action, "_selected_action": [node.pk]}
        )
    page = admin_client.get(f"/admin/provisioning/node/{node.pk}/history/").content.decode()
    assert "have a change history" not in page
    assert re.search(r"<td>disabled</td>\s*<td>admin</td>", page)
    assert re.search(r"<td>enabled</td>\s*<td>admin</td>", page)
    assert f"/admin/provisioning/fleetchange/?mac={MAC.replace(':', '%3A')}" in page
    farm_page = admin_client.get(f"/admin/provisioning/farm/{farm.pk}/history/").content.decode()
    assert f"{MAC}: disabled" in farm_page  # a farm's trail has its nodes' changes
    assert FleetChange.objects.count() == 2


def test_the_nodes_list_shows_what_a_node_runs_and_what_it_boots_next(
    admin_client, client, prod, kernel, make_kernel
):
    Node.objects.create(mac=MAC, farm=Farm.objects.create(farmer_id=7), network=prod)
    assert client.get(f"/provision/{MAC}").status_code == 200
    assert client.get(f"/kernel/net/prod.efi?mac={MAC}").status_code == 200
    newer = make_kernel("zero-os-v3.12.efi", b"v3.12")
    prod.switch_kernel(newer)  # the network moved on; the node has not booted since
    page = admin_client.get("/admin/provisioning/node/")
    cl = page.context["cl"]
    cell = str(cl.model_admin.running(cl.result_list[0]))
    assert cell.startswith('<a href="/admin/provisioning/latestboot/')
    assert f">{kernel.name}</a>" in cell and f"next boot: {newer.name}" in cell
    # Once it booted the new one, only that.
    assert client.get(f"/kernel/net/prod.efi?mac={MAC}").status_code == 200
    cl = admin_client.get("/admin/provisioning/node/").context["cl"]
    cell = str(cl.model_admin.running(cl.result_list[0]))
    assert f">{newer.name}</a>" in cell and "next boot" not in cell


def test_nodes_not_seen_for_some_days(admin_client):
    now = timezone.now()
    Node.objects.create(mac="52:54:00:00:00:01", last_seen=now - timedelta(hours=2))
    Node.objects.create(mac="52:54:00:00:00:02", last_seen=now - timedelta(days=10))
    Node.objects.create(mac="52:54:00:00:00:03")

    def listed(**params):
        page = admin_client.get("/admin/provisioning/node/", params)
        return sorted(n.mac[-2:] for n in page.context["cl"].result_list)

    assert listed(not_seen="1") == ["02"]
    assert listed(not_seen="7") == ["02"]
    assert listed(not_seen="30") == []
    assert listed(not_seen="never") == ["03"]
    assert "not seen for" in admin_client.get("/admin/provisioning/node/").content.decode()


def test_the_history_filters_by_a_typed_date_range(admin_client, prod):
    today = timezone.localdate()
    for days in (0, 3, 10):
        BootEvent.objects.create(kind="script", created_at=timezone.now() - timedelta(days=days))

    def ages(**params) -> list[int]:
        page = admin_client.get("/admin/provisioning/bootevent/", params)
        assert page.status_code == 200
        return [(today - timezone.localdate(e.created_at)).days
                for e in page.context["cl"].result_list]  # fmt: skip

    week_ago, yesterday = today - timedelta(days=7), today - timedelta(days=1)
    assert ages(since=week_ago.isoformat()) == [0, 3]
    assert ages(since=week_ago.isoformat(), until=yesterday.isoformat()) == [3]
    assert ages(until=(today - timedelta(days=3)).isoformat()) == [3, 10]  # the day included
    assert ages(until=(today - timedelta(days=3)).isoformat(), kind="script") == [3, 10]
    page = admin_client.get("/admin/provisioning/bootevent/", {"since": "yesterday"})
    assert page.status_code == 302 and page["Location"].endswith("?e=1")  # the admin's own
    assert (
        'type="date" name="since"'
        in admin_client.get("/admin/provisioning/bootevent/").content.decode()
    )


def test_latest_boots_seen_today_or_not_for_days(admin_client, prod, kernel):
    _booted(prod, kernel, mac="52:54:00:00:00:01")
    _booted(prod, kernel, mac="52:54:00:00:00:02", at=timezone.now() - timedelta(days=10))

    def listed(seen):
        page = admin_client.get("/admin/provisioning/latestboot/", {"seen": seen})
        return [row.mac[-2:] for row in page.context["cl"].result_list]

    assert listed("today") == ["01"]
    assert listed("not-7") == ["02"]
    assert listed("7") == ["01"]


def test_waiting_nodes_by_address_are_counted_once_when_counts_are_shown(admin_client):
    Node.objects.create(mac="52:54:00:00:00:01", last_ip="198.51.100.7")
    for query in ("?status=pending", "?status=pending&_facets=1"):
        page = admin_client.get(f"/admin/provisioning/node/{query}").content.decode()
        assert ">198.51.100.7 (1)</a>" in page
