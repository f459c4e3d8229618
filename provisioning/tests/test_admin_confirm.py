"""Before the admin switches or rolls back what a network boots, a page says what changes and
how many machines it reaches; nothing changes until the operator confirms. The same holds on
the four-eyes path: asking, and approving."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from provisioning import running
from provisioning.models import (
    BranchLink,
    Farm,
    KernelChange,
    LinkChange,
    Network,
    Node,
    PendingSwitch,
)

pytestmark = pytest.mark.django_db


def _machines(network, kernel, count: int) -> None:
    from django.utils import timezone

    running.note(
        dict(created_at=timezone.now(), kind="kernel", mac=f"52:54:00:00:00:{n:02x}",
             client_ip="10.0.0.1", network_id=network.pk, farmer_id=1, kernel_name=kernel.name)
        for n in range(count)
    )  # fmt: skip


def _form(network, **pointers) -> dict:
    return {
        "name": network.name, "active": "on", "extra_args": "",
        "kernel": network.kernel_id or "", "link": "", "kernel_arm64": "", "link_arm64": "",
        "kernel_changes-TOTAL_FORMS": "0", "kernel_changes-INITIAL_FORMS": "0", "_save": "Save",
        **pointers,
    }  # fmt: skip


@pytest.fixture
def reached(prod, kernel):
    """Three machines boot prod's kernel; two registered nodes follow prod."""
    _machines(prod, kernel, 3)
    farm = Farm.objects.create(farmer_id=1)
    for n in range(2):
        Node.objects.create(mac=f"52:54:00:00:01:{n:02x}", farm=farm, network=prod)
    return prod


def test_the_network_form_asks_before_switching_and_says_how_many_machines(
    admin_client, reached, kernel, make_kernel
):
    newer = make_kernel("zero-os-v2.efi", b"v2")
    url = f"/admin/provisioning/network/{reached.pk}/change/"
    page = admin_client.post(url, _form(reached, kernel=newer.pk))
    assert page.status_code == 200
    content = page.content.decode()
    assert "Switch network prod?" in content
    assert "<strong>3 machines</strong>" in content and "2 registered nodes follow" in content
    assert kernel.name in content and newer.name in content
    assert Network.objects.get(pk=reached.pk).kernel == kernel  # nothing switched yet
    # Every field of the form goes back with the confirmation.
    assert f'name="kernel" value="{newer.pk}"' in content and 'name="_save"' in content
    done = admin_client.post(url, {**_form(reached, kernel=newer.pk), "confirmed": "yes"})
    assert done.status_code == 302
    assert Network.objects.get(pk=reached.pk).kernel == newer


def test_the_network_form_saves_other_fields_without_asking(admin_client, reached):
    url = f"/admin/provisioning/network/{reached.pk}/change/"
    done = admin_client.post(url, _form(reached, name="Production grid"))
    assert done.status_code == 302
    assert Network.objects.get(pk=reached.pk).name == "Production grid"


def test_a_rollback_asks_first(admin_client, reached, kernel, make_kernel):
    reached.switch_kernel(make_kernel("zero-os-v2.efi", b"v2"))
    action = {"action": "rollback_kernel", "_selected_action": [reached.pk]}
    page = admin_client.post("/admin/provisioning/network/", action)
    content = page.content.decode()
    assert page.status_code == 200 and "Roll back?" in content
    assert "zero-os-v2.efi" in content and kernel.name in content
    assert Network.objects.get(pk=reached.pk).kernel.name == "zero-os-v2.efi"
    admin_client.post("/admin/provisioning/network/", {**action, "confirmed": "yes"})
    assert Network.objects.get(pk=reached.pk).kernel == kernel


def test_going_back_to_an_entry_of_the_history_asks_first(
    admin_client, reached, kernel, make_kernel
):
    first = reached.kernel_changes.get()
    reached.switch_kernel(make_kernel("zero-os-v2.efi", b"v2"))
    action = {"action": "restore", "_selected_action": [first.pk]}
    page = admin_client.post("/admin/provisioning/kernelchange/", action)
    assert "Roll back network prod?" in page.content.decode()
    assert "<strong>3 machines</strong>" in page.content.decode()
    assert KernelChange.objects.count() == 2
    admin_client.post("/admin/provisioning/kernelchange/", {**action, "confirmed": "yes"})
    assert Network.objects.get(pk=reached.pk).kernel == kernel


def test_the_four_eyes_path_shows_the_machines_when_asking_and_approving(
    client, reached, kernel, make_kernel, settings
):
    settings.ZOSBOOT_FOUR_EYES_NETWORKS = ["prod"]
    newer = make_kernel("zero-os-v2.efi", b"v2")
    users = get_user_model().objects
    alice = users.create_user("alice", password="x", is_staff=True, is_superuser=True)
    bob = users.create_user("bob", password="x", is_staff=True, is_superuser=True)
    client.force_login(alice)
    url = f"/admin/provisioning/network/{reached.pk}/change/"
    asking = client.post(url, _form(reached, kernel=newer.pk)).content.decode()
    assert "asked for: a second operator approves it" in asking and "3 machines" in asking
    client.post(url, {**_form(reached, kernel=newer.pk), "confirmed": "yes"})
    pending = PendingSwitch.objects.get()
    # alice is told at once that she cannot approve her own switch: no confirmation page.
    own = client.post(
        "/admin/provisioning/pendingswitch/",
        {"action": "approve", "_selected_action": [pending.pk]},
        follow=True,
    )
    assert b"a second operator must approve it" in own.content
    assert b"Approve these switches?" not in own.content
    client.force_login(bob)
    action = {"action": "approve", "_selected_action": [pending.pk]}
    page = client.post("/admin/provisioning/pendingswitch/", action).content.decode()
    assert "Approve these switches?" in page and "<strong>3 machines</strong>" in page
    assert Network.objects.get(pk=reached.pk).kernel == kernel
    client.post("/admin/provisioning/pendingswitch/", {**action, "confirmed": "yes"})
    assert Network.objects.get(pk=reached.pk).kernel == newer


def test_promoting_names_the_machines_each_network_reaches(admin_client, reached, make_kernel):
    newer = make_kernel("zero-os-v2.efi", b"v2")
    page = admin_client.post(
        "/admin/provisioning/kernel/", {"action": "promote", "_selected_action": [newer.pk]}
    ).content.decode()
    assert "prod: 3 machines run an amd64 kernel there" in page
    assert "test: 0 machines run an amd64 kernel there" in page


# --- branch links: every network following one switches when it moves ------------------------


def _link_form(kernel) -> dict:
    return {"kernel": kernel.pk, "changes-TOTAL_FORMS": "0", "changes-INITIAL_FORMS": "0"}


@pytest.fixture
def followed(reached, kernel):
    """prod follows link dev.efi (3 machines, 2 nodes); one more node follows it itself."""
    link, _ = BranchLink.point("dev.efi", kernel)
    reached.follow_link(link)
    farm = Farm.objects.get(farmer_id=1)
    Node.objects.create(mac="52:54:00:00:02:00", farm=farm, network=reached, link_override=link)
    return link


def test_moving_a_link_asks_first_and_names_each_network_following_it(
    admin_client, followed, kernel, make_kernel
):
    newer = make_kernel("zero-os-v2.efi", b"v2")
    url = f"/admin/provisioning/branchlink/{followed.pk}/change/"
    page = admin_client.post(url, _link_form(newer))
    content = page.content.decode()
    assert page.status_code == 200 and "Move link dev.efi?" in content
    assert "<strong>3 machines</strong>" in content and "2 registered nodes follow" in content
    assert f"{kernel.name} (through link dev.efi)" in content
    assert "zero-os-v2.efi (through link dev.efi)" in content
    assert "1 registered node follows link dev.efi themselves" in content
    assert BranchLink.objects.get(pk=followed.pk).kernel == kernel  # nothing moved yet
    done = admin_client.post(url, {**_link_form(newer), "confirmed": "yes"})
    assert done.status_code == 302
    assert BranchLink.objects.get(pk=followed.pk).kernel == newer


def test_a_link_nobody_follows_still_asks_and_says_so(admin_client, kernel, make_kernel):
    link, _ = BranchLink.point("lonely.efi", kernel)
    newer = make_kernel("zero-os-v2.efi", b"v2")
    page = admin_client.post(
        f"/admin/provisioning/branchlink/{link.pk}/change/", _link_form(newer)
    ).content.decode()
    assert "No network follows it" in page
    assert BranchLink.objects.get(pk=link.pk).kernel == kernel


def test_rolling_back_a_link_asks_first(admin_client, followed, kernel, make_kernel):
    BranchLink.point("dev.efi", make_kernel("zero-os-v2.efi", b"v2"))
    action = {"action": "rollback", "_selected_action": [followed.pk]}
    page = admin_client.post("/admin/provisioning/branchlink/", action).content.decode()
    assert "Roll back link dev.efi?" in page and "<strong>3 machines</strong>" in page
    assert f"{kernel.name} (through link dev.efi)" in page
    assert BranchLink.objects.get(pk=followed.pk).kernel.name == "zero-os-v2.efi"
    admin_client.post("/admin/provisioning/branchlink/", {**action, "confirmed": "yes"})
    assert BranchLink.objects.get(pk=followed.pk).kernel == kernel


def test_one_operator_cannot_move_a_link_a_four_eyes_network_follows(
    admin_client, followed, kernel, make_kernel, settings
):
    settings.ZOSBOOT_FOUR_EYES_NETWORKS = ["prod"]
    newer = make_kernel("zero-os-v2.efi", b"v2")
    url = f"/admin/provisioning/branchlink/{followed.pk}/change/"
    for form in (_link_form(newer), {**_link_form(newer), "confirmed": "yes"}):
        page = admin_client.post(url, form)
        assert page.status_code == 200
        assert "prod follows link dev.efi and takes a new kernel only with" in (
            page.content.decode()
        )
        assert "a second operator&#x27;s approval" in page.content.decode()
    BranchLink.point("dev.efi", newer)  # the release pipeline's own hands
    action = {"action": "rollback", "_selected_action": [followed.pk], "confirmed": "yes"}
    page = admin_client.post("/admin/provisioning/branchlink/", action, follow=True)
    assert "a second operator&#x27;s approval" in page.content.decode()
    assert BranchLink.objects.get(pk=followed.pk).kernel == newer
    assert not LinkChange.objects.filter(changed_by__username="admin").exists()


def test_a_link_move_the_followers_cannot_boot_is_refused_on_the_form(
    admin_client, followed, make_kernel
):
    arm = make_kernel("zero-os-arm64.efi", b"arm", arch="arm64")
    page = admin_client.post(
        f"/admin/provisioning/branchlink/{followed.pk}/change/",
        {**_link_form(arm), "confirmed": "yes"},
    )
    assert page.status_code == 200
    assert "prod follows dev.efi on amd64 machines" in page.content.decode()
    assert BranchLink.objects.get(pk=followed.pk).kernel.name != arm.name
