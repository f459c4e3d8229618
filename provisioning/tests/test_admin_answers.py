"""Every fact the admin shows of networks and kernels is right: the networks booting a kernel
through a branch link, since when a network boots what it boots and who switched it (a command
too), and what uses a kernel."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import quote

import pytest
from django.core.management import call_command
from django.utils import timezone

from provisioning import running
from provisioning.models import BranchLink, KernelChange, Network, Node

pytestmark = pytest.mark.django_db


def test_a_kernel_booted_through_a_branch_link_names_the_networks_following_it(
    admin_client, dev_follows_a_link
):
    dev, link, first, second, _ = dev_follows_a_link
    page = admin_client.get("/admin/provisioning/kernel/")
    cl = page.context["cl"]
    booted = {kernel.name: str(cl.model_admin.booted_by(kernel)) for kernel in cl.result_list}
    assert "dev" in booted[second.name] and f"through {link.name}" in booted[second.name]
    assert booted[first.name] == "-"  # the link moved on: nobody boots the first build now
    assert f"/admin/provisioning/network/{dev.pk}/change/" in page.content.decode()


def test_a_network_following_a_link_boots_the_build_since_the_link_moved_to_it(
    admin_client, dev_follows_a_link
):
    dev, link, first, second, now = dev_follows_a_link
    moved = timezone.localtime(now - timedelta(days=1))
    page = admin_client.get("/admin/provisioning/network/")
    row = next(n for n in page.context["cl"].result_list if n.pk == dev.pk)
    cell = str(page.context["cl"].model_admin.amd64(row))
    assert second.name in cell and link.name in cell
    assert f"since {moved:%Y-%m-%d %H:%M:%S}" in cell
    assert "before the recorded history" not in cell
    change_page = admin_client.get(f"/admin/provisioning/network/{dev.pk}/change/")
    assert f"since {moved:%Y-%m-%d %H:%M:%S}" in change_page.content.decode()


def test_import_kernel_switches_are_shown_as_made_by_the_command(admin_client, prod, tmp_path):
    source = tmp_path / "zero-os-v3.12.efi"
    source.write_bytes(b"v3.12")
    call_command("import_kernel", str(source), "--network", "prod")
    change = KernelChange.objects.filter(network=prod).latest("changed_at")
    assert change.changed_via == "manage.py import_kernel"
    listing = admin_client.get("/admin/provisioning/kernelchange/").content.decode()
    assert "manage.py import_kernel" in listing
    network_page = admin_client.get(f"/admin/provisioning/network/{prod.pk}/change/")
    assert "manage.py import_kernel" in network_page.content.decode()
    networks = admin_client.get("/admin/provisioning/network/").content.decode()
    assert "by manage.py import_kernel" in networks


def test_a_kernel_links_to_the_networks_links_nodes_and_machines_using_it(
    admin_client, prod, kernel
):
    link, _ = BranchLink.point("zero-os-development.efi", kernel)
    dev = Network.objects.get(slug="dev")
    dev.follow_link(link)
    Node.objects.create(mac="52:54:00:00:12:34", kernel_override=kernel)
    running.note([dict(created_at=timezone.now(), kind="kernel", mac="52:54:00:00:12:34",
                       client_ip="10.1.2.3", network_id=prod.pk, farmer_id=7,
                       kernel_name=kernel.name)])  # fmt: skip
    page = admin_client.get(f"/admin/provisioning/kernel/{kernel.pk}/change/").content.decode()
    assert f'href="/admin/provisioning/network/{prod.pk}/change/">prod</a>' in page
    assert f'href="/admin/provisioning/network/{dev.pk}/change/">dev</a>' in page
    assert f"through {link.name}" in page
    assert f'href="/admin/provisioning/branchlink/{link.pk}/change/">{link.name}</a>' in page
    assert f"/admin/provisioning/node/?kernel_override__id__exact={kernel.pk}" in page
    assert f"/admin/provisioning/latestboot/?kernel_name={quote(kernel.name)}" in page
    nodes = admin_client.get(f"/admin/provisioning/node/?kernel_override__id__exact={kernel.pk}")
    assert [n.mac for n in nodes.context["cl"].result_list] == ["52:54:00:00:12:34"]
