"""The script path reads networks, kernels and farms from the worker's memory, checked against
the configuration generation once per request: fast, and never stale."""

from __future__ import annotations

import pytest

from provisioning import lookups
from provisioning.models import ConfigGeneration, Farm, Network

pytestmark = pytest.mark.django_db


def test_a_warm_script_request_costs_no_orm_query_but_the_history_insert(
    client, prod, django_assert_num_queries
):
    Farm.objects.create(farmer_id=1234, name="Warm farm")
    client.get("/ipxe/prod/1234")  # loads this worker's copy
    # Only the history: the boot event, then the machine's latest boot read and upserted (a
    # service writes these off the request, every ZOSBOOT_HISTORY_FLUSH_SECONDS; tests at
    # once). The generation is read on the driver's own cursor, no ORM query at all.
    with django_assert_num_queries(3):
        response = client.get("/ipxe/prod/1234")
    assert b"Warm farm" in response.content


def test_a_kernel_switch_is_served_at_the_next_request(client, prod, make_kernel):
    assert b"kernel=zero-os-development-amd64.efi" in client.get("/ipxe/prod/1").content
    prod.switch_kernel(make_kernel("zero-os-v2.efi", b"v2"))
    assert b"kernel=zero-os-v2.efi" in client.get("/ipxe/prod/1").content
    prod.rollback_kernel()
    assert b"kernel=zero-os-development-amd64.efi" in client.get("/ipxe/prod/1").content


def test_farm_and_network_changes_are_served_at_the_next_request(client, prod):
    farm = Farm.objects.create(farmer_id=77, name="Seventy-seven")
    assert b"Seventy-seven" in client.get("/ipxe/prod/77").content
    farm.active = False
    farm.save()
    assert client.get("/ipxe/prod/77").status_code == 403
    farm.delete()
    assert client.get("/ipxe/prod/77").status_code == 200
    prod.active = False
    prod.save()
    assert client.get("/ipxe/prod/77").status_code == 404
    Network.objects.filter(pk=prod.pk).delete()
    assert client.get("/ipxe/prod/77").status_code == 404


def test_a_change_made_elsewhere_is_seen_through_the_generation(client, prod):
    client.get("/ipxe/prod/1")
    # Another instance's change reaches this one only through the database.
    Network.objects.filter(pk=prod.pk).update(extra_args="from-elsewhere")
    assert b"from-elsewhere" not in client.get("/ipxe/prod/1").content  # no stamp, no reload
    ConfigGeneration.bump()
    assert b"from-elsewhere" in client.get("/ipxe/prod/1").content


def test_made_up_farm_ids_cannot_grow_a_workers_memory(client, prod, monkeypatch):
    monkeypatch.setattr(lookups, "MAX_REMEMBERED", 50)
    for farm in range(1, 200):
        assert client.get(f"/ipxe/prod/{farm}").status_code == 200
    assert len(lookups.current().farms) <= 50
