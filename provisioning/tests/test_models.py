import os

import pytest
from django.db import IntegrityError, transaction
from django.db.models import ProtectedError

from provisioning.models import KernelChange, Network, Node

pytestmark = pytest.mark.django_db


def test_default_networks_exist_with_pretty_names():
    assert dict(Network.objects.values_list("slug", "name")) == {
        "prod": "Production",
        "test": "Testnet",
        "dev": "Devnet",
        "qa": "QA-net",
    }


def test_switching_the_kernel_is_recorded_and_can_be_rolled_back(prod, make_kernel, admin_user):
    old = prod.kernel
    new = make_kernel("zero-os-v2.efi", b"v2")
    change = prod.switch_kernel(new, user=admin_user)
    assert (change.previous, change.new, change.changed_by) == (old, new, admin_user)
    assert Network.objects.get(slug="prod").kernel == new

    back = prod.rollback_kernel(user=admin_user)
    assert Network.objects.get(slug="prod").kernel == old
    assert (back.previous_name, back.new_name) == ("zero-os-v2.efi", old.name)
    assert prod.kernel_changes.count() == 3  # initial pointer, switch, rollback


def test_switching_to_the_same_kernel_records_nothing(prod):
    before = KernelChange.objects.count()
    assert prod.switch_kernel(prod.kernel) is None
    assert KernelChange.objects.count() == before


def test_rollback_without_history_is_refused():
    network = Network.objects.get(slug="qa")
    with pytest.raises(KernelChange.NoPrevious):
        network.rollback_kernel()


def test_a_kernel_a_network_boots_cannot_be_deleted(prod):
    with pytest.raises(ProtectedError):
        prod.kernel.delete()


def test_deleting_an_unused_kernel_removes_its_file_once_committed(
    make_kernel, django_capture_on_commit_callbacks
):
    kernel = make_kernel("zero-os-old.efi", b"old")
    path = kernel.file.path
    with django_capture_on_commit_callbacks(execute=True):
        kernel.delete()
        assert os.path.exists(path)  # a deletion rolled back would keep its file
    assert not os.path.exists(path)


def test_mac_is_stored_in_canonical_form_and_unique(prod):
    node = Node.objects.create(mac="52-54-00-AB-CD-EF")
    assert node.mac == "52:54:00:ab:cd:ef"
    assert Node.objects.for_mac("525400ABCDEF") == node
    with pytest.raises(IntegrityError), transaction.atomic():
        Node.objects.create(mac="525400abcdef")


def test_kernel_history_survives_deleting_the_kernel(prod, make_kernel):
    spare = make_kernel("zero-os-spare.efi", b"spare")
    prod.switch_kernel(spare)
    prod.rollback_kernel()
    spare.delete()
    assert KernelChange.objects.filter(previous_name="zero-os-spare.efi").exists()
