"""Who runs what: each machine's latest boot, kept as the history is written, in the API and
the admin; boots that fetched a script and then no kernel are flagged."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from provisioning import history, running
from provisioning.models import ApiToken, Farm, LatestBoot, Node

pytestmark = pytest.mark.django_db

MAC = "52:54:00:00:00:01"


def _boot(client, address: str, script: str, mac: str | None = MAC, kernel: str = "prod") -> None:
    """What a node does: the script, then the kernel download with its card's MAC."""
    assert client.get(script, REMOTE_ADDR=address).status_code == 200
    if mac is not None:
        url = f"/kernel/net/{kernel}.efi?mac={mac}"
        assert client.get(url, REMOTE_ADDR=address).status_code == 200


def test_a_kernel_download_takes_over_the_script_its_address_fetched(client, prod, kernel):
    Farm.objects.create(farmer_id=9)
    _boot(client, "192.0.2.1", "/ipxe/prod/9", mac="52-54-00-00-00-01")
    row = LatestBoot.objects.get()  # the address's script became the machine's
    assert (row.key, row.mac, row.farmer_id, row.network, row.kernel_name) == (
        MAC, MAC, 9, prod, kernel.name
    )  # fmt: skip
    assert row.kernel_since == row.kernel_at >= row.script_at
    assert not row.failed_on_the_way


def test_which_machines_run_a_kernel_and_since_when(client, prod, kernel, make_kernel):
    _boot(client, "192.0.2.1", "/provision/52:54:00:00:00:01")  # pending: no kernel
    node = Node.objects.get()
    Node.objects.filter(pk=node.pk).approve(Farm.objects.create(farmer_id=7), prod)
    _boot(client, "192.0.2.1", f"/provision/{MAC}")
    first = LatestBoot.objects.get(key=MAC).kernel_since
    _boot(client, "192.0.2.1", f"/provision/{MAC}")  # a reboot on the same kernel
    assert LatestBoot.objects.get(key=MAC).kernel_since == first
    _boot(client, "198.51.100.2", "/ipxe/prod/7", mac="52:54:00:00:00:02")

    token = ApiToken.issue("ops", scopes=["nodes"])[1]
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    rows = client.get(f"/api/v1/kernels/{kernel.name}/nodes", **auth).json()
    assert sorted((r["mac"], r["farm"], r["client_ip"]) for r in rows) == [
        (MAC, 7, "192.0.2.1"), ("52:54:00:00:00:02", 7, "198.51.100.2")
    ]  # fmt: skip

    newer = make_kernel("zero-os-newer.efi", b"newer")
    prod.switch_kernel(newer)
    _boot(client, "192.0.2.1", f"/provision/{MAC}")
    moved = LatestBoot.objects.get(key=MAC)
    assert moved.kernel_name == newer.name and moved.kernel_since > first
    assert [r.mac for r in running.nodes_running(kernel.name)] == ["52:54:00:00:00:02"]


def test_a_script_with_no_kernel_after_it_is_flagged(client, prod):
    _boot(client, "203.0.113.5", "/ipxe/prod", mac=None)  # stopped after the script
    _boot(client, "192.0.2.1", "/ipxe/prod")  # booted
    assert list(running.failed_on_the_way()) == []  # still within the download's grace
    later = timezone.now() + running.DOWNLOAD_GRACE + timedelta(seconds=1)
    failed = list(running.failed_on_the_way(now=later))
    assert [(row.key, row.mac) for row in failed] == [("203.0.113.5", "")]
    assert list(running.failed_on_the_way(now=later + timedelta(hours=1))) == []


def test_a_made_up_mac_in_the_kernel_url_is_ignored(client, prod):
    _boot(client, "192.0.2.1", "/ipxe/prod", mac="<script>%0aalert(1)")
    row = LatestBoot.objects.get()
    assert (row.key, row.mac, row.kernel_at is not None) == ("192.0.2.1", "", True)


def test_batched_history_keeps_the_latest_boots_too(client, prod, settings):
    settings.ZOSBOOT_HISTORY_FLUSH_SECONDS = 3600  # queued, written by flush()
    _boot(client, "192.0.2.1", "/ipxe/prod")
    assert not LatestBoot.objects.exists()
    history.flush()
    assert LatestBoot.objects.get().mac == MAC


def test_events_are_folded_in_time_order_whatever_the_batch_order(prod, kernel):
    now = timezone.now()
    base = dict(client_ip="192.0.2.1", network_id=prod.pk, farmer_id=None, mac=MAC)
    events = [
        dict(base, kind="kernel", kernel_name="new.efi", created_at=now),
        dict(base, kind="kernel", kernel_name=kernel.name, created_at=now - timedelta(days=1)),
        dict(base, kind="pending", kernel_name="", created_at=now),  # not a boot: ignored
    ]
    running.note(events)
    row = LatestBoot.objects.get()
    assert (row.kernel_name, row.kernel_since) == ("new.efi", now)


def test_admin_shows_who_runs_what_linked_from_kernels_and_networks(admin_client, client, prod):
    _boot(client, "192.0.2.1", "/ipxe/prod")
    _boot(client, "203.0.113.5", "/ipxe/prod", mac=None)
    kernel_name = prod.kernel.name
    listing = admin_client.get("/admin/provisioning/kernel/").content.decode()
    assert f"/admin/provisioning/latestboot/?kernel_name={kernel_name}" in listing
    assert "1 machine(s)" in listing
    network_page = admin_client.get(f"/admin/provisioning/network/{prod.pk}/change/")
    assert f"?network__id__exact={prod.pk}" in network_page.content.decode()
    assert "2 machine(s)" in network_page.content.decode()

    page = admin_client.get(f"/admin/provisioning/latestboot/?kernel_name={kernel_name}")
    assert page.status_code == 200 and MAC in page.content.decode()
    # A MAC in any form finds the machine.
    assert (
        MAC in admin_client.get("/admin/provisioning/latestboot/?q=525400000001").content.decode()
    )
    failed = admin_client.get("/admin/provisioning/latestboot/?boot=failed").content.decode()
    assert "203.0.113.5" not in failed  # within the grace: not yet failed
    assert admin_client.get(f"/admin/provisioning/latestboot/{prod.pk}/delete/").status_code == 403
