"""Branch links and API tokens in the admin: the same audited paths the API uses."""

import re

import pytest

from provisioning.models import ApiToken, BranchLink, KernelChange, LinkChange

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("model", ["branchlink", "linkchange", "apitoken"])
def test_changelists_render(admin_client, kernel, model):
    ApiToken.issue("zos-ci", ["publish"])
    BranchLink.point("zero-os-development-generic.efi", kernel)
    assert admin_client.get(f"/admin/provisioning/{model}/").status_code == 200


def test_a_token_made_in_the_admin_is_shown_once_and_works(admin_client):
    response = admin_client.post(
        "/admin/provisioning/apitoken/add/",
        {"name": "ops-script", "scope_choices": ["networks", "nodes"]},
        follow=True,
    )
    assert response.status_code == 200
    shown = re.search(r"API token ops-script: (zbt_\S+)", response.content.decode())
    assert shown, response.content.decode()[:3000]
    token = ApiToken.authenticate(shown.group(1))
    assert token.scope_list == ["networks", "nodes"] and token.created_by.username == "admin"


def test_revoking_a_token_in_the_admin_stops_it_at_once(admin_client):
    token, secret = ApiToken.issue("zos-ci", ["publish"])
    admin_client.post(
        "/admin/provisioning/apitoken/",
        {"action": "revoke", "_selected_action": [token.pk]},
    )
    assert ApiToken.authenticate(secret) is None


def test_a_link_moved_in_the_admin_is_audited_with_the_user(admin_client, make_kernel):
    first, second = make_kernel("build-1.efi", b"1"), make_kernel("build-2.efi", b"2")
    inline = {"changes-TOTAL_FORMS": "0", "changes-INITIAL_FORMS": "0"}
    add = {"name": "dev.efi", "kernel": first.pk, **inline}
    admin_client.post("/admin/provisioning/branchlink/add/", add)
    link = BranchLink.objects.get(name="dev.efi")
    change = {"kernel": second.pk, **inline, "confirmed": "yes"}
    admin_client.post(f"/admin/provisioning/branchlink/{link.pk}/change/", change)
    changes = list(LinkChange.objects.order_by("changed_at", "pk"))
    assert [(c.previous_name, c.new_name) for c in changes] == [
        ("", "build-1.efi"),
        ("build-1.efi", "build-2.efi"),
    ]
    assert {c.changed_by.username for c in changes} == {"admin"}
    admin_client.post(
        "/admin/provisioning/branchlink/",
        {"action": "rollback", "_selected_action": [link.pk], "confirmed": "yes"},
    )
    link.refresh_from_db()
    assert link.kernel == first


def test_a_network_set_to_follow_a_link_in_the_admin_is_audited(admin_client, prod, kernel):
    link, _ = BranchLink.point("zero-os-development-generic.efi", kernel)
    response = admin_client.post(
        f"/admin/provisioning/network/{prod.pk}/change/",
        {"name": prod.name, "active": "on", "kernel": "", "link": link.pk, "extra_args": "",
         "kernel_changes-TOTAL_FORMS": "0", "kernel_changes-INITIAL_FORMS": "0",
         "confirmed": "yes"},
    )  # fmt: skip
    assert response.status_code == 302, response.content.decode()[:3000]
    prod.refresh_from_db()
    assert prod.link == link and prod.kernel is None
    change = KernelChange.objects.filter(network=prod).order_by("-changed_at", "-pk").first()
    assert change.new_link_name == link.name and change.changed_by.username == "admin"


def test_link_history_cannot_be_deleted(admin_client, kernel):
    link, change = BranchLink.point("dev.efi", kernel)
    response = admin_client.post(
        f"/admin/provisioning/linkchange/{change.pk}/delete/", {"post": "yes"}
    )
    assert response.status_code == 403 and LinkChange.objects.filter(pk=change.pk).exists()
