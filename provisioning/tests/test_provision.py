import pytest

from provisioning.models import BootEvent, Farm, Node

pytestmark = pytest.mark.django_db


@pytest.fixture
def farm(db):
    return Farm.objects.create(farmer_id=1234, name="Green Acres")


@pytest.mark.parametrize("form", ["52:54:00:ab:cd:ef", "52-54-00-AB-CD-EF", "525400abcdef"])
def test_provisioned_node_gets_its_farm_network_and_args_in_any_mac_form(client, prod, farm, form):
    Node.objects.create(
        mac="52:54:00:ab:cd:ef", farm=farm, network=prod, extra_args="console=ttyS0"
    )
    response = client.get(f"/provision/{form}")
    assert response.status_code == 200
    script = response.content.decode()
    assert "runmode=prod panic=7200 farmer_id=1234 console=ttyS0 &&" in script
    assert "Node........: 52:54:00:ab:cd:ef" in script


def test_node_kernel_override_wins_over_the_network(client, prod, farm, make_kernel):
    special = make_kernel("zero-os-special.efi", b"special")
    Node.objects.create(mac="52:54:00:ab:cd:ef", farm=farm, network=prod, kernel_override=special)
    script = client.get("/provision/525400abcdef").content.decode()
    assert f"set zos_source0 {special.content_path}\n" in script


def test_boot_updates_what_the_service_saw(client, prod, farm):
    Node.objects.create(mac="52:54:00:ab:cd:ef", farm=farm, network=prod)
    client.get("/provision/525400abcdef", REMOTE_ADDR="10.9.8.7")
    client.get("/provision/525400abcdef", REMOTE_ADDR="10.9.8.8")
    node = Node.objects.get()
    assert node.boot_count == 2
    assert node.last_ip == "10.9.8.8"
    assert node.first_seen is not None and node.last_seen >= node.first_seen
    events = BootEvent.objects.filter(node=node, kind=BootEvent.Kind.SCRIPT)
    assert events.count() == 2


def test_unknown_mac_is_discovered_then_boots_once_approved(client, prod, farm, settings):
    settings.ZOSBOOT_DISCOVERY_RETRY_SECONDS = 30
    first = client.get("/provision/52-54-00-12-34-56")
    assert first.status_code == 200
    waiting = first.content.decode()
    assert "waiting for approval" in waiting
    assert "sleep 30" in waiting
    # Asked again of whichever server answered (an edge, a mirror): a relative URL.
    assert "chain --replace --autofree /provision/52-54-00-12-34-56" in waiting
    assert "imgfetch" not in waiting
    node = Node.objects.get(mac="52:54:00:12:34:56")
    assert node.is_pending and node.first_seen is not None

    # Still pending: same answer, no second node.
    assert "waiting for approval" in client.get("/provision/525400123456").content.decode()
    assert Node.objects.count() == 1

    # An operator assigns farm and network (the admin action does this update).
    Node.objects.filter(pk=node.pk).update(farm=farm, network=prod)
    booted = client.get("/provision/52:54:00:12:34:56").content.decode()
    assert "farmer_id=1234" in booted and "imgexec zos" in booted
    kinds = list(BootEvent.objects.order_by("pk").values_list("kind", flat=True))
    assert kinds == ["pending", "pending", "script"]


def test_discovery_stops_recording_when_too_many_are_waiting(client, db, settings):
    settings.ZOSBOOT_MAX_PENDING_NODES = 2
    for mac in ("020000000001", "020000000002", "020000000003"):
        assert client.get(f"/provision/{mac}").status_code == 200
    assert Node.objects.count() == 2
    assert b"could not register" in client.get("/provision/020000000004").content


def test_disabled_node_is_told_and_does_not_boot(client, prod, farm):
    Node.objects.create(mac="52:54:00:ab:cd:ef", farm=farm, network=prod, enabled=False)
    response = client.get("/provision/525400abcdef")
    assert response.status_code == 200
    script = response.content.decode()
    assert "will not boot" in script and "disabled" in script
    assert "imgfetch" not in script and "imgexec" not in script
    assert Node.objects.get().boot_count == 0
    assert BootEvent.objects.get().kind == BootEvent.Kind.REFUSED


def test_node_of_a_disabled_farm_does_not_boot(client, prod, farm):
    Node.objects.create(mac="52:54:00:ab:cd:ef", farm=farm, network=prod)
    farm.active = False
    farm.save()
    script = client.get("/provision/525400abcdef").content.decode()
    assert "farm 1234 is disabled" in script and "imgfetch" not in script


@pytest.mark.parametrize("mac", ["zz:zz", "52:54:00:ab:cd", "52%0A54", "..", "x" * 300])
def test_malformed_mac_is_a_400_ipxe_error(client, db, mac):
    response = client.get(f"/provision/{mac}")
    assert response.status_code == 400
    assert response.content.startswith(b"#!ipxe\n")
    assert not Node.objects.exists()
