"""The boot-history admin stays an indexed lookup at any size: what a search term is decides
the one column it reads, page links are counted up to a cap, kernel names come from the
store (bench/admin_history.py measures it with a million rows)."""

import pytest

from provisioning.admin.history import BoundedPaginator
from provisioning.models import BootEvent

pytestmark = pytest.mark.django_db

URL = "/admin/provisioning/bootevent/"


@pytest.fixture
def events(prod):
    sha = "ab" * 32
    return [
        BootEvent.objects.create(kind="script", mac="52:54:00:00:00:01", client_ip="192.0.2.1",
                                 farmer_id=7, network=prod),
        BootEvent.objects.create(kind="kernel", mac="52:54:00:00:00:02", client_ip="2001:db8::2",
                                 kernel_name=prod.kernel.name, kernel_sha256=sha),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("term", "found"),
    [
        ("52-54-00-00-00-01", [0]),
        ("525400000002", [1]),
        ("192.0.2.1", [0]),
        ("2001:DB8::2", [1]),
        ("7", [0]),
        ("AB" * 32, [1]),
        ("zero-os-development-amd64.efi", [1]),
        ("99999999999999", []),
        ("<script>", []),
    ],
)
def test_a_search_term_reads_the_column_it_looks_like(admin_client, events, term, found):
    page = admin_client.get(URL, {"q": term})
    assert page.status_code == 200
    shown = {event.pk for event in page.context["cl"].result_list}
    assert shown == {events[i].pk for i in found}


def test_the_kernel_filter_lists_the_store_and_finds_its_events(admin_client, events, prod):
    page = admin_client.get(URL)
    assert f"?kernel_name={prod.kernel.name}" in page.content.decode()
    filtered = admin_client.get(URL, {"kernel_name": prod.kernel.name})
    assert [e.pk for e in filtered.context["cl"].result_list] == [events[1].pk]


def test_pages_are_counted_up_to_a_cap(admin_client, events, monkeypatch):
    monkeypatch.setattr(BoundedPaginator, "COUNT_CAP", 1)
    page = admin_client.get(URL).content.decode()
    assert "more than 1" in page
    monkeypatch.setattr(BoundedPaginator, "COUNT_CAP", 10)
    assert "2 boot events" in admin_client.get(URL).content.decode()
