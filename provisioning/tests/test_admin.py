import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from provisioning.models import BootEvent, Farm, FleetChange, Kernel, KernelChange, Network, Node

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "model",
    [
        "network",
        "kernel",
        "kernelchange",
        "farm",
        "node",
        "bootevent",
        "fleetchange",
        "latestboot",
        "linkchange",
        "branchlink",
        "apitoken",
    ],  # fmt: skip
)
def test_changelists_render(admin_client, prod, model):
    Node.objects.create(mac="525400abcdef")
    BootEvent.objects.create(kind="script", network=prod, kernel_name="k")
    response = admin_client.get(f"/admin/provisioning/{model}/")
    assert response.status_code == 200


def test_changelist_search_and_filters(admin_client, prod):
    Node.objects.create(mac="525400abcdef")
    assert admin_client.get("/admin/provisioning/node/?status=pending&q=52:54").status_code == 200
    assert admin_client.get("/admin/provisioning/bootevent/?kind=script&q=x").status_code == 200


def test_uploading_a_kernel_in_the_admin_hashes_and_stores_it(admin_client, settings):
    upload = SimpleUploadedFile("upload.bin", b"\x7fkernel-image")
    response = admin_client.post(
        "/admin/provisioning/kernel/add/",
        {"name": "zero-os-new.efi", "file": upload, "notes": ""},
    )
    assert response.status_code == 302, response.content[:2000]
    kernel = Kernel.objects.get(name="zero-os-new.efi")
    assert kernel.size == 13 and len(kernel.sha256) == 64
    assert (settings.ZOSBOOT_KERNELS_DIR / "zero-os-new.efi").read_bytes() == b"\x7fkernel-image"


def test_admin_refuses_a_kernel_name_with_a_path(admin_client):
    upload = SimpleUploadedFile("upload.bin", b"x")
    response = admin_client.post(
        "/admin/provisioning/kernel/add/", {"name": "../evil.efi", "file": upload}
    )
    assert response.status_code == 200
    assert not Kernel.objects.exists()


def test_changing_the_network_kernel_in_the_admin_is_audited(
    admin_client, prod, make_kernel, admin_user
):
    newer = make_kernel("zero-os-v2.efi", b"v2")
    response = admin_client.post(
        f"/admin/provisioning/network/{prod.pk}/change/",
        {
            "name": "Production",
            "active": "on",
            "kernel": newer.pk,
            "extra_args": "",
            "kernel_changes-TOTAL_FORMS": "0",
            "kernel_changes-INITIAL_FORMS": "0",
            "confirmed": "yes",
        },
    )
    assert response.status_code == 302, response.content[:3000]
    change = KernelChange.objects.first()
    assert (change.new, change.changed_by) == (newer, admin_user)
    assert Network.objects.get(pk=prod.pk).kernel == newer


def test_rollback_action(admin_client, prod, make_kernel):
    old = prod.kernel
    prod.switch_kernel(make_kernel("zero-os-v2.efi", b"v2"))
    response = admin_client.post(
        "/admin/provisioning/network/",
        {"action": "rollback_kernel", "_selected_action": [prod.pk], "confirmed": "yes"},
        follow=True,
    )
    assert b"Network prod now boots zero-os-development-amd64.efi again" in response.content
    assert Network.objects.get(pk=prod.pk).kernel == old


def test_rollback_action_without_history_says_why(admin_client):
    qa = Network.objects.get(slug="qa")
    response = admin_client.post(
        "/admin/provisioning/network/",
        {"action": "rollback_kernel", "_selected_action": [qa.pk]},
        follow=True,
    )
    assert b"no previous kernel" in response.content


def test_deleting_a_kernel_in_use_is_refused_with_the_networks_named(admin_client, prod):
    response = admin_client.post(
        f"/admin/provisioning/kernel/{prod.kernel.pk}/delete/", {"post": "yes"}
    )
    assert Kernel.objects.filter(pk=prod.kernel.pk).exists()
    assert b"protected" in response.content.lower() or b"Cannot delete" in response.content
    assert b"prod" in response.content


def test_kernel_changelist_shows_which_networks_boot_it(admin_client, prod):
    response = admin_client.get("/admin/provisioning/kernel/")
    url = f"/admin/provisioning/network/{prod.pk}/change/"
    assert f'class="field-booted_by"><a href="{url}">prod</a></td>' in response.content.decode()


def test_promote_action_points_networks_at_the_kernel(admin_client, prod, make_kernel):
    newer = make_kernel("zero-os-v2.efi", b"v2")
    test = Network.objects.get(slug="test")
    page = admin_client.post(
        "/admin/provisioning/kernel/", {"action": "promote", "_selected_action": [newer.pk]}
    )
    assert page.status_code == 200 and b"Boot zero-os-v2.efi on networks" in page.content
    admin_client.post(
        "/admin/provisioning/kernel/",
        {
            "action": "promote",
            "_selected_action": [newer.pk],
            "apply": "1",
            "networks": [prod.pk, test.pk],
        },
    )
    assert set(Network.objects.filter(kernel=newer).values_list("slug", flat=True)) == {
        "prod",
        "test",
    }


def test_assign_action_approves_pending_nodes(admin_client, client, prod):
    farm = Farm.objects.create(farmer_id=77, name="F")
    client.get("/provision/525400abcdef")
    node = Node.objects.get()
    page = admin_client.post(
        "/admin/provisioning/node/", {"action": "assign", "_selected_action": [node.pk]}
    )
    assert page.status_code == 200 and b"Assign a farm and a network" in page.content
    admin_client.post(
        "/admin/provisioning/node/",
        {
            "action": "assign",
            "_selected_action": [node.pk],
            "apply": "1",
            "farm": farm.pk,
            "network": prod.pk,
        },
    )
    assert "farmer_id=77" in client.get("/provision/525400abcdef").content.decode()


def test_disable_and_enable_actions(admin_client, prod):
    farm = Farm.objects.create(farmer_id=77)
    node = Node.objects.create(mac="525400abcdef", farm=farm, network=prod)
    admin_client.post(
        "/admin/provisioning/node/", {"action": "disable", "_selected_action": [node.pk]}
    )
    assert not Node.objects.get().enabled
    admin_client.post(
        "/admin/provisioning/node/", {"action": "enable", "_selected_action": [node.pk]}
    )
    assert Node.objects.get().enabled


def test_node_added_in_admin_gets_a_canonical_mac(admin_client, prod):
    farm = Farm.objects.create(farmer_id=77)
    response = admin_client.post(
        "/admin/provisioning/node/add/",
        {
            "mac": "52-54-00-AB-CD-EF",
            "farm": farm.pk,
            "network": prod.pk,
            "extra_args": "",
            "enabled": "on",
            "notes": "",
        },
    )
    assert response.status_code == 302, response.content[:2000]
    assert Node.objects.get().mac == "52:54:00:ab:cd:ef"


def test_node_with_hostile_extra_args_is_refused_in_admin(admin_client, prod):
    response = admin_client.post(
        "/admin/provisioning/node/add/",
        {"mac": "525400abcdef", "extra_args": "a && shell", "enabled": "on"},
    )
    assert response.status_code == 200
    assert not Node.objects.exists()


def test_boot_history_is_read_only(admin_client, prod):
    event = BootEvent.objects.create(kind="script")
    assert admin_client.get("/admin/provisioning/bootevent/add/").status_code == 403
    response = admin_client.post(
        f"/admin/provisioning/bootevent/{event.pk}/change/", {"kind": "kernel"}
    )
    assert response.status_code == 403


@pytest.mark.parametrize("form", ["52-54-00-AB-CD-EF", "525400abcdef", "52:54:00:ab:cd:ef"])
def test_node_search_finds_a_mac_in_any_form(admin_client, form):
    Node.objects.create(mac="52:54:00:ab:cd:ef")
    Node.objects.create(mac="52:54:00:00:00:01")
    response = admin_client.get("/admin/provisioning/node/", {"q": form})
    assert response.context["cl"].result_count == 1


@pytest.mark.parametrize("model", ["kernelchange", "bootevent"])
def test_audit_and_history_rows_cannot_be_deleted_in_the_admin(admin_client, prod, model):
    BootEvent.objects.create(kind="script", network=prod)
    row = {"kernelchange": KernelChange, "bootevent": BootEvent}[model].objects.first()
    response = admin_client.post(f"/admin/provisioning/{model}/{row.pk}/delete/", {"post": "yes"})
    assert response.status_code == 403
    assert type(row).objects.filter(pk=row.pk).exists()


def test_the_approve_form_says_how_often_waiting_nodes_ask(admin_client, settings):
    settings.ZOSBOOT_DISCOVERY_RETRY_SECONDS = 30
    node = Node.objects.create(mac="52:54:00:ab:cd:ef")
    response = admin_client.post(
        "/admin/provisioning/node/", {"action": "assign", "_selected_action": [node.pk]}
    )
    assert "ask again every 30 seconds" in response.content.decode()


def test_approving_enabling_and_disabling_nodes_is_recorded_with_who(
    admin_client, admin_user, client, prod
):
    farm = Farm.objects.create(farmer_id=77)
    client.get("/provision/525400abcdef")
    node = Node.objects.get()
    admin_client.post(
        "/admin/provisioning/node/",
        {"action": "assign", "_selected_action": [node.pk], "apply": "1",
         "farm": farm.pk, "network": prod.pk},
    )  # fmt: skip
    for action in ("disable", "enable"):
        admin_client.post(
            "/admin/provisioning/node/", {"action": action, "_selected_action": [node.pk]}
        )
    trail = [(c.mac, c.farmer_id, c.what, c.changed_by) for c in FleetChange.objects.reverse()]
    assert trail == [
        (node.mac, 77, "approved: farm 77, network prod", admin_user),
        (node.mac, 77, "disabled", admin_user),
        (node.mac, 77, "enabled", admin_user),
    ]
    page = admin_client.get("/admin/provisioning/fleetchange/?q=52-54-00-AB-CD-EF").content
    assert b"approved: farm 77, network prod" in page
    first = FleetChange.objects.last()
    assert (
        admin_client.get(f"/admin/provisioning/fleetchange/{first.pk}/delete/").status_code == 403
    )


def test_farm_and_node_edits_in_the_admin_are_recorded(admin_client, admin_user):
    admin_client.post(
        "/admin/provisioning/farm/add/", {"farmer_id": "5", "name": "Five", "notes": "",
                                          "active": "on"}
    )  # fmt: skip
    farm = Farm.objects.get()
    admin_client.post(
        f"/admin/provisioning/farm/{farm.pk}/change/",
        {"farmer_id": "5", "name": "Renamed", "notes": "", "active": "on"},
    )
    admin_client.post(f"/admin/provisioning/farm/{farm.pk}/delete/", {"post": "yes"})
    assert [(c.farmer_id, c.what) for c in FleetChange.objects.reverse()] == [
        (5, "created"), (5, "changed name"), (5, "deleted")
    ]  # fmt: skip


def test_node_list_filters_by_a_typed_farm_id_not_a_list_of_every_farm(admin_client, prod):
    Farm.objects.bulk_create(Farm(farmer_id=n) for n in range(1, 400))
    Node.objects.create(mac="52:54:00:00:00:01", farm=Farm.objects.get(farmer_id=7), network=prod)
    Node.objects.create(mac="52:54:00:00:00:02", farm=Farm.objects.get(farmer_id=8), network=prod)
    page = admin_client.get("/admin/provisioning/node/").content.decode()
    assert 'name="farm"' in page and "farm__id__exact" not in page  # a box, not 399 links
    filtered = admin_client.get("/admin/provisioning/node/?farm=7&status=enabled")
    assert "52:54:00:00:00:01" in filtered.content.decode()
    assert "52:54:00:00:00:02" not in filtered.content.decode()
    assert 'name="status" value="enabled"' in filtered.content.decode()  # kept when refiltering
    assert admin_client.get("/admin/provisioning/node/?farm=x").status_code in (200, 302)


def test_the_approve_form_searches_farms_instead_of_listing_them(admin_client, client, prod):
    Farm.objects.bulk_create(Farm(farmer_id=n, name=f"farm {n}") for n in range(1, 400))
    client.get("/provision/525400abcdef")
    page = admin_client.post(
        "/admin/provisioning/node/",
        {"action": "assign", "_selected_action": [Node.objects.get().pk]},
    ).content.decode()
    assert "admin-autocomplete" in page and "<option" not in page.split('name="farm"')[1][:200]
    found = admin_client.get(
        "/admin/autocomplete/",
        {"term": "321", "app_label": "provisioning", "model_name": "node", "field_name": "farm"},
    ).json()
    assert [r["text"] for r in found["results"]] == ["321 farm 321"]


def test_a_kernel_upload_takes_its_name_from_the_file(admin_client, settings):
    upload = SimpleUploadedFile("zero-os-main-1a2b3c4d5e.efi", b"\x7fkernel")
    response = admin_client.post(
        "/admin/provisioning/kernel/add/", {"name": "", "file": upload, "notes": ""}
    )
    assert response.status_code == 302, response.content[:2000]
    assert Kernel.objects.get().name == "zero-os-main-1a2b3c4d5e.efi"
    assert (settings.ZOSBOOT_KERNELS_DIR / "zero-os-main-1a2b3c4d5e.efi").exists()


def test_a_kernel_upload_with_an_error_keeps_the_file_for_the_next_try(admin_client, settings):
    upload = SimpleUploadedFile("kernel.efi", b"\x7fkernel-kept")
    first = admin_client.post(
        "/admin/provisioning/kernel/add/", {"name": "bad/name", "file": upload, "notes": ""}
    )
    assert first.status_code == 200 and not Kernel.objects.exists()
    page = first.content.decode()
    assert "Kept from your last try: kernel.efi" in page
    kept = first.context["adminform"].form.data["kept"]
    # The next try sends no file, only the corrected name and the kept file's token.
    second = admin_client.post(
        "/admin/provisioning/kernel/add/", {"name": "zero-os-good.efi", "kept": kept, "notes": ""}
    )
    assert second.status_code == 302, second.content[:2000]
    kernel = Kernel.objects.get()
    assert (kernel.name, kernel.size) == ("zero-os-good.efi", 12)
    assert (settings.ZOSBOOT_KERNELS_DIR / "zero-os-good.efi").read_bytes() == b"\x7fkernel-kept"
    assert list((settings.ZOSBOOT_RUN_DIR / "kernel-uploads").iterdir()) == []
    # A forged token is no file.
    forged = admin_client.post(
        "/admin/provisioning/kernel/add/", {"name": "zero-os-x.efi", "kept": "x:y", "notes": ""}
    )
    assert b"Choose the kernel file to upload." in forged.content


def test_rollback_to_any_entry_of_the_history(admin_client, admin_user, prod, make_kernel):
    v1 = prod.kernel
    prod.switch_kernel(make_kernel("zero-os-v2.efi", b"v2"))
    prod.switch_kernel(make_kernel("zero-os-v3.efi", b"v3"))
    first = prod.kernel_changes.earliest("changed_at")  # the switch that set v1
    response = admin_client.post(
        "/admin/provisioning/kernelchange/",
        {"action": "restore", "_selected_action": [first.pk], "confirmed": "yes"},
        follow=True,
    )
    assert b"Network prod now boots zero-os-development-amd64.efi again" in response.content
    assert Network.objects.get(pk=prod.pk).kernel == v1
    latest = prod.kernel_changes.latest("changed_at")
    assert latest.changed_by == admin_user and latest.note.startswith("rollback to the switch of")


def test_rollback_to_an_entry_whose_kernel_is_gone_says_why(admin_client, prod, make_kernel):
    old = make_kernel("zero-os-old.efi", b"old")
    prod.switch_kernel(old)
    prod.switch_kernel(make_kernel("zero-os-v3.efi", b"v3"))
    change = prod.kernel_changes.get(new_name="zero-os-old.efi")
    old.delete()
    response = admin_client.post(
        "/admin/provisioning/kernelchange/",
        {"action": "restore", "_selected_action": [change.pk]},
        follow=True,
    )
    assert b"Cannot roll back: zero-os-old.efi no longer exists." in response.content


def test_deleting_the_kernel_a_network_rolls_back_to_warns(admin_client, prod, make_kernel):
    previous = prod.kernel
    prod.switch_kernel(make_kernel("zero-os-v2.efi", b"v2"))
    page = admin_client.get(f"/admin/provisioning/kernel/{previous.pk}/delete/")
    assert b"is what prod would roll back to" in page.content
    unrelated = make_kernel("zero-os-spare.efi", b"spare")
    page = admin_client.get(f"/admin/provisioning/kernel/{unrelated.pk}/delete/")
    assert b"would roll back to" not in page.content


def test_admin_times_have_seconds(admin_client, prod):
    change = prod.kernel_changes.get()
    page = admin_client.get("/admin/provisioning/kernelchange/").content.decode()
    assert f"{change.changed_at:%Y-%m-%d %H:%M:%S}" in page


def test_promoting_to_one_network_says_so_in_a_sentence(admin_client, prod, make_kernel):
    newer = make_kernel("zero-os-v2.efi", b"v2")
    test = Network.objects.get(slug="test")
    response = admin_client.post(
        "/admin/provisioning/kernel/",
        {"action": "promote", "_selected_action": [newer.pk], "apply": "1",
         "networks": [test.pk]},
        follow=True,
    )  # fmt: skip
    assert b"Network test now boots zero-os-v2.efi." in response.content
