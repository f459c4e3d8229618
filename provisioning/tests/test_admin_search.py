"""The search boxes find what the lists show: the 16-character sha256 prefix of the boot
history, a part of a MAC or an address, a farm's name, a switch's dotted MAC; and the history
sorts and counts only what stays fast at a million rows."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from provisioning import running
from provisioning.models import BootEvent, Farm, Node

pytestmark = pytest.mark.django_db

HISTORY = "/admin/provisioning/bootevent/"
A, B = "52:54:00:00:12:34", "0c:c4:7a:9e:00:01"


@pytest.fixture
def fleet(prod, kernel):
    """Two machines on two farms: A downloads the kernel from 10.1.2.3, B asks for a script
    from 192.0.2.9. Both are registered nodes and have latest boots."""
    green = Farm.objects.create(farmer_id=77, name="Green Acres")
    blue = Farm.objects.create(farmer_id=78, name="Blue Hill")
    Node.objects.create(mac=A, farm=green, network=prod, last_ip="10.1.2.3")
    Node.objects.create(mac=B, farm=blue, network=prod, last_ip="192.0.2.9")
    now = timezone.now()
    values = [
        dict(created_at=now - timedelta(minutes=1), kind="kernel", mac=A, client_ip="10.1.2.3",
             network_id=None, farmer_id=77, kernel_name=kernel.name,
             kernel_sha256=kernel.sha256),
        dict(created_at=now, kind="script", mac=B, client_ip="192.0.2.9", network_id=prod.pk,
             farmer_id=78, kernel_name="", kernel_sha256=""),
    ]  # fmt: skip
    events = {row["mac"]: BootEvent.objects.create(**row) for row in values}
    running.note(values)
    return events


@pytest.mark.parametrize(
    ("term", "macs"),
    [
        ("SHA16", [A]),  # the prefix the list shows
        ("SHA16_UPPER", [A]),
        ("00:12:34", [A]),  # a part of a MAC, any form
        ("00-12-34", [A]),
        ("1234", [A]),
        ("7a9e", [B]),
        ("5254.0000.1234", [A]),  # a switch's dotted form
        ("0cc4.7a9e.0001", [B]),
        ("10.1.2", [A]),  # a part of an address
        ("192.0.2.9", [B]),
        ("green", [A]),  # a farm's name
        ("Blue Hill", [B]),
        ("78", [B]),
        ("development", [A]),  # a part of a kernel's name
        ("nothing-like-it", []),
    ],
)
def test_the_history_search_finds_what_the_list_shows(admin_client, fleet, kernel, term, macs):
    term = {"SHA16": kernel.sha256[:16], "SHA16_UPPER": kernel.sha256[:16].upper()}.get(term, term)
    page = admin_client.get(HISTORY, {"q": term})
    assert page.status_code == 200
    assert sorted(e.mac for e in page.context["cl"].result_list) == macs
    if term == kernel.sha256[:16]:
        assert term in page.content.decode()  # and the list shows it


@pytest.mark.parametrize(
    ("term", "column"),
    [("00:12:34", "mac"), ("10.1.2", "client_ip"), ("green", "farmer_id"),
     ("SHA16", "kernel_sha256"), ("develop", "kernel_name")],
)  # fmt: skip
def test_a_history_search_reads_one_indexed_column_by_exact_values(
    admin_client, fleet, kernel, term, column
):
    """A part of a MAC or an address, a farm's name, a sha256 prefix or a part of a kernel
    name is looked up in the small tables first, then the history by the exact value (its
    index, in the list's order): never a LIKE over the history."""
    term = {"SHA16": kernel.sha256[:16]}.get(term, term)
    with CaptureQueriesContext(connection) as queries:
        admin_client.get(HISTORY, {"q": term})
    history = [q["sql"] for q in queries if 'FROM "provisioning_bootevent"' in q["sql"]]
    assert history and not any("LIKE" in sql for sql in history)
    assert all(f'WHERE "provisioning_bootevent"."{column}" = ' in sql for sql in history)


@pytest.mark.parametrize(
    ("term", "macs"),
    [
        ("0cc4.7a9e.0001", [B]),
        ("0CC4.7A9E.0001", [B]),
        ("00:12:34", [A]),
        ("00-12-34", [A]),
        ("7a9e00", [B]),
        ("10.1.2", [A]),
        ("green", [A]),
        ("78", [B]),
    ],
)
def test_the_nodes_search_finds_a_mac_in_any_form_or_a_part(admin_client, fleet, term, macs):
    page = admin_client.get("/admin/provisioning/node/", {"q": term})
    assert sorted(node.mac for node in page.context["cl"].result_list) == macs


@pytest.mark.parametrize(
    ("term", "macs"),
    [
        ("5254.0000.1234", [A]),
        ("00-12-34", [A]),
        ("10.1.2", [A]),
        ("Blue", [B]),
        ("77", [A]),
        ("SHA16", [A]),
        ("development", [A]),
    ],
)
def test_the_latest_boots_search_finds_parts_and_names(admin_client, fleet, kernel, term, macs):
    term = {"SHA16": kernel.sha256[:16]}.get(term, term)
    page = admin_client.get("/admin/provisioning/latestboot/", {"q": term})
    assert sorted(row.mac for row in page.context["cl"].result_list) == macs


def test_the_history_sorts_by_time_only_whatever_the_url_asks(admin_client, fleet):
    page = admin_client.get(HISTORY)
    content = page.content.decode()
    assert content.count('class="sortable') == 1  # the time column
    newest_first = [e.pk for e in page.context["cl"].result_list]
    for column in range(1, 7):  # kind, machine, network, farm, kernel, user agent
        asked = admin_client.get(HISTORY, {"o": str(column)})
        assert [e.pk for e in asked.context["cl"].result_list] == newest_first
    oldest = admin_client.get(HISTORY, {"o": "0"}).context["cl"].result_list
    assert [e.pk for e in oldest] == sorted(newest_first)


def test_the_history_offers_no_counts_and_counts_nothing_when_asked(admin_client, fleet):
    page = admin_client.get(HISTORY, {"_facets": "1"})
    assert page.status_code == 200
    assert "Show counts" not in page.content.decode()
    assert not page.context["cl"].add_facets
