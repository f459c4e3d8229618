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


def test_made_up_farm_ids_cost_neither_memory_nor_a_query(client, prod, django_assert_num_queries):
    Farm.objects.create(farmer_id=7, name="Real")
    client.get("/ipxe/prod/7")
    for farm in range(100, 300):
        with django_assert_num_queries(3):  # the history, as any script
            assert client.get(f"/ipxe/prod/{farm}").status_code == 200
    assert list(lookups.current().farms) == [7]


def test_a_worker_knows_every_farm_from_one_load_not_one_query_per_farm(
    client, prod, django_assert_max_num_queries, django_assert_num_queries
):
    Farm.objects.bulk_create(Farm(farmer_id=i, name=f"Farm {i}") for i in range(1, 2001))
    ConfigGeneration.bump()
    lookups.forget()
    # The first request after a start (or a change) loads everything at once...
    with django_assert_max_num_queries(10):
        assert b"Farm........: 1 Farm 1\n" in client.get("/ipxe/prod/1").content
    # ...and every farm asked about afterwards, for the first time, costs no lookup.
    for farm in (2, 999, 2000):
        with django_assert_num_queries(3):
            response = client.get(f"/ipxe/prod/{farm}")
        assert f"Farm........: {farm} Farm {farm}\n".encode() in response.content


def test_a_farm_renamed_in_the_admin_is_named_so_at_the_next_request(admin_client, client, prod):
    farm = Farm.objects.create(farmer_id=55, name="Old name")
    assert b"55 Old name" in client.get("/ipxe/prod/55").content
    response = admin_client.post(
        f"/admin/provisioning/farm/{farm.pk}/change/",
        {"farmer_id": 55, "name": "New name", "active": "on", "notes": ""},
    )
    assert response.status_code == 302, response.content[:500]
    script = client.get("/ipxe/prod/55").content
    assert b"55 New name" in script and b"Old name" not in script
