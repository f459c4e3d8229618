"""Discovery cannot be flooded: one address records a limited number of new pending nodes per
window, a full list makes room by removing the stalest unassigned entries (never a node that
keeps asking), and ops see who is flooding."""

import logging
from datetime import timedelta

import pytest
from django.utils import timezone

from provisioning import discovery
from provisioning.models import Farm, Node

pytestmark = pytest.mark.django_db

FLOODER = "198.51.100.7"
REAL = "203.0.113.9"


def made_up_mac(i: int) -> str:
    return f"02:00:00:{i >> 16 & 0xFF:02x}:{i >> 8 & 0xFF:02x}:{i & 0xFF:02x}"


def ask(client, mac: str, address: str) -> str:
    response = client.get(f"/provision/{mac}", REMOTE_ADDR=address)
    assert response.status_code == 200
    return response.content.decode()


def age(nodes, minutes: float, *, field: str = "last_seen") -> None:
    Node.objects.filter(pk__in=[n.pk for n in nodes]).update(
        **{field: timezone.now() - timedelta(minutes=minutes)}
    )


def test_a_flood_from_one_address_leaves_room_for_a_real_node(
    client, settings, caplog, monkeypatch
):
    settings.ZOSBOOT_MAX_PENDING_NODES = 1000
    settings.ZOSBOOT_DISCOVERY_PER_ADDRESS = 50
    settings.ZOSBOOT_DISCOVERY_WINDOW_SECONDS = 600
    monkeypatch.setattr(logging.getLogger("zosboot"), "propagate", True)  # to caplog
    caplog.set_level(logging.INFO, logger="zosboot.discovery")

    refusals = [ask(client, made_up_mac(i), FLOODER) for i in range(900)]
    assert Node.objects.filter(last_ip=FLOODER).count() == 50
    assert "It is now listed on the boot service" in refusals[49]
    refused = refusals[50]
    assert "could not register it: too many new machines from 198.51.100.7 in the last 10 " in (
        refused
    )
    assert "sleep 30" in refused  # and it keeps asking
    assert not Node.objects.filter(mac=made_up_mac(50)).exists()
    limit_lines = [r for r in caplog.records if "discovery limit reached" in r.getMessage()]
    assert len(limit_lines) == 1 and FLOODER in limit_lines[0].getMessage()

    real = "52:54:00:12:34:56"
    assert "It is now listed on the boot service" in ask(client, real, REAL)
    assert Node.objects.pending().filter(mac=real, last_ip=REAL).exists()


def test_the_address_may_record_again_once_its_nodes_leave_the_window(client, settings):
    settings.ZOSBOOT_DISCOVERY_PER_ADDRESS = 3
    settings.ZOSBOOT_DISCOVERY_WINDOW_SECONDS = 600
    for i in range(4):
        ask(client, made_up_mac(i), FLOODER)
    assert Node.objects.count() == 3
    age(Node.objects.all(), 11, field="first_seen")
    ask(client, made_up_mac(4), FLOODER)
    assert Node.objects.filter(mac=made_up_mac(4)).exists()


def test_a_full_list_makes_room_by_removing_the_stalest_and_keeps_who_keeps_asking(
    client, settings, prod
):
    settings.ZOSBOOT_MAX_PENDING_NODES = 5
    settings.ZOSBOOT_DISCOVERY_RETRY_SECONDS = 30
    real = "52:54:00:00:00:01"
    ask(client, real, REAL)
    for i in range(3):
        ask(client, made_up_mac(i), f"198.51.100.{i + 1}")
    # Time passes: the made-up MACs were asked for once, the real node keeps asking.
    age(Node.objects.all(), 10)
    ask(client, real, REAL)
    # Nodes ops touched are never removed, however long ago they asked.
    farm = Farm.objects.create(farmer_id=7)
    approved = Node.objects.create(mac="52:54:00:00:00:02", farm=farm, network=prod)
    half_assigned = Node.objects.create(mac="52:54:00:00:00:03", farm=farm)
    age([approved, half_assigned], 60)
    Node.objects.filter(mac=made_up_mac(0)).update(last_seen=timezone.now() - timedelta(hours=2))
    # Full (5 pending, counting the half-assigned one): a newcomer takes the stalest place.
    newcomer = "52:54:00:00:00:04"
    assert "It is now listed" in ask(client, newcomer, "192.0.2.50")
    assert not Node.objects.filter(mac=made_up_mac(0)).exists()
    assert set(Node.objects.values_list("mac", flat=True)) == {
        real,
        newcomer,
        made_up_mac(1),
        made_up_mac(2),
        approved.mac,
        half_assigned.mac,
    }
    assert Node.objects.pending().count() == 5


def test_a_full_list_of_nodes_that_keep_asking_refuses_the_newcomer(client, settings):
    settings.ZOSBOOT_MAX_PENDING_NODES = 2
    ask(client, made_up_mac(1), "192.0.2.1")
    ask(client, made_up_mac(2), "192.0.2.2")
    script = ask(client, made_up_mac(3), "192.0.2.3")
    assert "could not register it: too many machines waiting for approval" in script
    assert Node.objects.count() == 2


def test_ops_see_which_addresses_the_waiting_nodes_come_from(client, admin_client, settings):
    settings.ZOSBOOT_DISCOVERY_PER_ADDRESS = 100
    for i in range(12):
        ask(client, made_up_mac(i), FLOODER)
    ask(client, "52:54:00:12:34:56", REAL)
    assert discovery.pending_by_address()[:2] == [
        {"last_ip": FLOODER, "nodes": 12},
        {"last_ip": REAL, "nodes": 1},
    ]
    listing = admin_client.get("/admin/provisioning/node/").content.decode()
    assert "waiting nodes by address" in listing
    assert f"{FLOODER} (12)" in listing and f"{REAL} (1)" in listing
    flooded = admin_client.get(f"/admin/provisioning/node/?pending_from={FLOODER}")
    assert flooded.context["cl"].result_count == 12
    wrong = admin_client.get("/admin/provisioning/node/?pending_from=x")
    assert wrong.status_code == 302 and wrong.url.endswith("?e=1")  # the admin's "bad filter"
