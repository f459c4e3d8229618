"""Every boot tells its story: the node's reports are tied to the script it was served, taken
once, bounded per address; a node's timeline, the fleet's boots today, the farmer's page."""

from __future__ import annotations

import re
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from provisioning import reports, tickets, timeline
from provisioning.models import BootEvent, Farm, LatestBoot, Node

pytestmark = pytest.mark.django_db

MAC = "52:54:00:12:34:56"
HYPHENS = MAC.replace(":", "-")


@pytest.fixture(autouse=True)
def _fresh_limits():
    reports.window.__init__()
    reports.seen.__init__()


def served_token(client, path: str = "/ipxe/prod/1234") -> str:
    script = client.get(path).content.decode()
    return re.search(r"set zos_report /boot-report/([0-9a-f.]+)\n", script).group(1)


def report(client, token: str, milestone: str, address: str = "10.0.0.5", **params):
    query = "&".join(f"{key}={value}" for key, value in {"mac": HYPHENS, **params}.items())
    return client.get(f"/boot-report/{token}/{milestone}?{query}", REMOTE_ADDR=address)


def test_a_report_is_tied_to_the_script_and_recorded(client, prod, kernel):
    Farm.objects.create(farmer_id=1234, name="Green Acres")
    token = served_token(client)
    response = report(
        client, token, "arrived", card=0, **{"try": 1}, t0=1000, t1=1012, arch="amd64"
    )
    assert response.status_code == 200 and response.content == b"ok\n"
    event = BootEvent.objects.get(kind="arrived")
    assert (event.network, event.farmer_id, event.kernel_name, event.mac, event.seconds) == (
        prod, 1234, kernel.name, MAC, 12.0,
    )  # fmt: skip
    assert event.token == token == BootEvent.objects.get(kind="script").token
    row = LatestBoot.objects.get(mac=MAC)
    assert (row.milestone, row.download_seconds, row.kernel_name) == ("arrived", 12.0, kernel.name)
    assert timeline.state_of(row) == timeline.State.BOOTED


@pytest.mark.parametrize(
    "mangle",
    [
        lambda token: token[:-1] + ("0" if token[-1] != "0" else "1"),  # signature changed
        lambda token: token.replace(".", ".f", 1),  # a field changed, signature kept
        lambda token: "not-a-token",
        lambda token: tickets.issue(1, 1, None, {}, now=time.time() - 2 * 86400),  # too late
    ],
)
def test_a_forged_or_stale_report_is_refused_and_not_recorded(client, prod, mangle):
    token = served_token(client)
    response = report(client, mangle(token), "arrived")
    assert response.status_code == 403
    assert response.content.startswith(b"#!ipxe\n")
    assert not BootEvent.objects.filter(kind="arrived").exists()


def test_a_replayed_report_is_taken_once_even_by_another_worker(client, prod):
    token = served_token(client)
    assert report(client, token, "failed", card=0, **{"try": 1}, err="0x3c092003").content == (
        b"ok\n"
    )
    assert b"already" in report(client, token, "failed", card=0, **{"try": 1}).content
    reports.seen.__init__()  # another worker, which never saw the first
    assert report(client, token, "failed", card=0, **{"try": 1}).status_code == 200
    assert BootEvent.objects.filter(kind="failed").count() == 1
    report(client, token, "failed", card=0, **{"try": 2})  # another attempt is another report
    assert BootEvent.objects.filter(kind="failed").count() == 2


def test_a_flood_of_reports_from_one_address_is_cut_off(client, prod, settings):
    settings.ZOSBOOT_REPORTS_PER_ADDRESS = 5
    token = served_token(client)
    answers = [report(client, token, "failed", card=0, **{"try": n}).status_code
               for n in range(1, 9)]  # fmt: skip
    assert answers == [200] * 5 + [429] * 3
    assert report(client, token, "arrived", address="10.0.0.6").status_code == 200
    assert BootEvent.objects.filter(kind__in=BootEvent.REPORTS).count() == 6


def test_unknown_milestones_and_junk_parameters_never_fail_the_server(client, prod):
    token = served_token(client)
    assert client.get(f"/boot-report/{token}/exploded").status_code == 404
    response = report(client, token, "failed", card="x" * 50, err="zz", t0="-", t1="9" * 30)
    assert response.status_code == 200
    event = BootEvent.objects.get(kind="failed")
    assert (event.card, event.error, event.seconds) == (0, "", None)


def test_failed_downloads_make_a_failing_boot_with_a_reason(client, prod):
    token = served_token(client)
    for attempt in (1, 2, 3):
        report(client, token, "failed", card=0, **{"try": attempt}, err="1007230979")
    row = LatestBoot.objects.get(mac=MAC)
    assert (row.failures, row.error) == (3, "0x3c092003")
    assert timeline.state_of(row) == timeline.State.FAILING
    assert "Downloading the kernel failed 3 times" in timeline.reason(row)


def test_a_kernel_that_would_not_start_says_so(client, prod):
    token = served_token(client)
    report(client, token, "arrived", t0=1, t1=2)
    report(client, token, "start-failed", err="0x2e008081")
    row = LatestBoot.objects.get(mac=MAC)
    assert timeline.state_of(row) == timeline.State.FAILING
    assert "could not be started (iPXE error 0x2e008081)" in timeline.reason(row)


def test_the_kernel_download_carries_the_boot_it_belongs_to(client, prod, kernel):
    token = served_token(client)
    client.get(f"{kernel.content_path}?mac={HYPHENS}&boot={token}")
    client.get(f"{kernel.content_path}?mac={HYPHENS}&boot=forged.{token}")
    assert [e.token for e in BootEvent.objects.filter(kind="kernel").order_by("pk")] == [
        token, "",
    ]  # fmt: skip


def test_a_nodes_timeline_joins_a_farm_script_through_its_token(client, prod, kernel):
    token = served_token(client, "/ipxe/prod/4321")  # names no MAC
    client.get(f"{kernel.content_path}?mac={HYPHENS}&boot={token}")
    report(client, token, "arrived", card=0, **{"try": 1}, t0=10, t1=19, arch="amd64")
    served_token(client, "/ipxe/prod/4321")  # another machine's boot: not this one's
    (boot,) = timeline.node_timeline(MAC)
    assert [m.kind for m in boot.milestones] == ["script", "kernel", "arrived"]
    assert (boot.network, boot.farmer_id, boot.kernel, boot.outcome) == (
        "prod", 4321, kernel.name, "booted",
    )  # fmt: skip
    assert boot.seconds_to_arrival is not None
    assert "downloaded in 9 s" in boot.milestones[-1].detail


def test_the_timeline_is_in_the_api(client, prod, kernel):
    from provisioning.models import ApiToken

    token = served_token(client)
    report(client, token, "failed", card=1, **{"try": 2}, err="0x3c092003")
    secret = ApiToken.issue("ops", ["nodes"])[1]
    answer = client.get(
        f"/api/v1/nodes/{HYPHENS}/timeline", HTTP_AUTHORIZATION=f"Bearer {secret}"
    ).json()
    assert answer["mac"] == MAC and answer["state"] == "in progress"
    (boot,) = answer["boots"]
    assert boot["outcome"] == "failed" and boot["failures"] == 1
    assert boot["milestones"][-1]["detail"].startswith("card net1, attempt 2; iPXE error")


def test_a_provisioned_nodes_reports_name_it(client, prod):
    farm = Farm.objects.create(farmer_id=77)
    node = Node.objects.create(mac=MAC, farm=farm, network=prod)
    token = served_token(client, f"/provision/{HYPHENS}")
    report(client, token, "arrived")
    assert BootEvent.objects.get(kind="arrived").node == node


# --- the fleet's boots today ------------------------------------------------------------------


def _row(mac, milestone, minutes_ago, failures=0, **fields):
    return LatestBoot(
        key=mac, mac=mac, milestone=milestone, failures=failures,
        milestone_at=timezone.now() - timedelta(minutes=minutes_ago), **fields,
    )  # fmt: skip


def test_boots_today_sorts_the_fleet_into_booted_in_progress_stuck_and_failing(
    admin_client, kernel
):
    LatestBoot.objects.bulk_create([
        _row("52:54:00:00:00:01", "arrived", 5, kernel_name=kernel.name, farmer_id=77),
        _row("52:54:00:00:00:02", "script", 2),
        _row("52:54:00:00:00:03", "script", 40, scripts=4),
        _row("52:54:00:00:00:04", "failed", 1, failures=3, error="0x3c092003"),
        _row("52:54:00:00:00:05", "start-failed", 1),
        _row("52:54:00:00:00:06", "arrived", 60 * 30),  # days ago: not today
    ])  # fmt: skip
    states = {row.mac: row.state for row in timeline.today()}
    assert "52:54:00:00:00:06" not in states  # its latest boot is days old
    assert states["52:54:00:00:00:01"] == "booted"
    assert states["52:54:00:00:00:02"] == "in progress"
    assert states["52:54:00:00:00:03"] == "stuck"
    assert states["52:54:00:00:00:04"] == "failing"
    assert states["52:54:00:00:00:05"] == "failing"
    page = admin_client.get("/admin/provisioning/boottoday/?state=failing").content.decode()
    assert "52:54:00:00:00:04" in page and "52:54:00:00:00:05" in page
    assert "52:54:00:00:00:01" not in page
    assert "Downloading the kernel failed 3 times" in page
    farm = admin_client.get("/admin/provisioning/boottoday/?farm=77").content.decode()
    assert "52:54:00:00:00:01" in farm and "52:54:00:00:00:04" not in farm
    runs = admin_client.get(f"/admin/provisioning/boottoday/?kernel_name={kernel.name}")
    assert "52:54:00:00:00:01" in runs.content.decode()
    assert "52:54:00:00:00:02" not in runs.content.decode()
    assert admin_client.get("/admin/provisioning/boottoday/?farm=x").status_code != 500
    stuck = admin_client.get("/admin/provisioning/boottoday/?state=stuck").content.decode()
    assert "asked for its boot script 4 times, the kernel never arrived" in stuck.replace(
        "Asked", "asked"
    )


def test_boots_today_stays_one_query_at_fleet_scale(
    admin_client, db, django_assert_max_num_queries
):
    LatestBoot.objects.bulk_create(
        _row(f"52:54:00:00:{i // 256:02x}:{i % 256:02x}", "script", i % 60) for i in range(5000)
    )
    with django_assert_max_num_queries(12):  # session, user, counts, the page: not per row
        response = admin_client.get("/admin/provisioning/boottoday/?state=stuck")
    assert response.status_code == 200


# --- the farmer's page ------------------------------------------------------------------------


def test_a_farmer_sees_each_machine_of_the_farm_and_what_to_check(client, prod):
    Farm.objects.create(farmer_id=4321, name="Hillside")
    token = served_token(client, "/ipxe/prod/4321")
    report(client, token, "failed", card=0, **{"try": 1}, err="0x3c092003")
    report(client, token, "failed", card=0, **{"try": 2}, err="0x3c092003")
    page = client.get("/farms/4321/").content.decode()
    assert "Farm 4321: Hillside" in page
    assert "..:12:34:56" in page and MAC not in page and HYPHENS not in page
    assert "10.0.0.5" not in page and "/admin/" not in page
    assert "Downloading the kernel failed 2 times" in page
    assert client.get("/farms/12a/").status_code == 400
    assert "No machine of farm 99" in client.get("/farms/99/").content.decode()


def test_the_portal_links_to_the_farm_page_once_the_farm_is_given(client, prod):
    page = client.get("/?network=prod&farm=4321&extra=").content.decode()
    assert 'href="/farms/4321/"' in page


def test_boots_and_reports_are_counted_in_metrics(client, prod):
    token = served_token(client)
    report(client, token, "arrived", t0=1, t1=3)
    report(client, "bad.token", "arrived")
    text = client.get("/metrics").content.decode()
    assert 'zosboot_boots_total{network="prod",outcome="arrived"}' in text
    assert 'zosboot_boot_reports_total{milestone="arrived",outcome="refused"}' in text
    assert "zosboot_boot_seconds_bucket" in text


def test_a_nodes_page_shows_its_boots_milestone_by_milestone(admin_client, prod, kernel):
    farm = Farm.objects.create(farmer_id=77, name="Lakeside")
    node = Node.objects.create(mac=MAC, network=prod, farm=farm)
    token = served_token(admin_client, f"/provision/{HYPHENS}")
    report(admin_client, token, "failed", card=0, **{"try": 1}, err="0x3c092003")
    report(admin_client, token, "arrived", card=0, **{"try": 2}, t0=10, t1=40)
    page = admin_client.get(f"/admin/provisioning/node/{node.pk}/change/").content.decode()
    assert "its boots" in page.lower()
    assert "booted, kernel arrived" in page
    assert "kernel download failed" in page and "card net0, attempt 1" in page
    assert "iPXE error 0x3c092003" in page and "downloaded in 30 s" in page
    # The fleet's list leads to it.
    today = admin_client.get("/admin/provisioning/boottoday/").content.decode()
    assert f'href="/admin/provisioning/node/{node.pk}/change/"' in today


def test_a_machine_without_a_node_has_its_timeline_on_its_latest_boot(admin_client, prod):
    token = served_token(admin_client, "/ipxe/prod/4321")
    report(admin_client, token, "start-failed", card=0, **{"try": 1}, err="0x2e008081")
    row = LatestBoot.objects.get(mac=MAC)
    today = admin_client.get("/admin/provisioning/boottoday/").content.decode()
    assert f'href="/admin/provisioning/latestboot/{row.pk}/change/"' in today
    page = admin_client.get(f"/admin/provisioning/latestboot/{row.pk}/change/").content.decode()
    assert ": could not start</h4>" in page and "kernel could not be started" in page
    assert "network prod, farm 4321" in page
