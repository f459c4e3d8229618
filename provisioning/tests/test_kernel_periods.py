"""Which kernel a network's machines booted when: from its switches and, while it follows a
branch link, the link's moves, with who made each happen."""

from __future__ import annotations

import pytest

from provisioning.kernel_periods import current, periods_of
from provisioning.models import LinkChange, Network

pytestmark = pytest.mark.django_db


def test_a_followed_links_moves_are_periods_of_the_network_with_who_moved_it(
    dev_follows_a_link,
):
    dev, link, first, second, now = dev_follows_a_link
    LinkChange.objects.filter(link=link, new=second).update(changed_via="API token ci")
    network = Network.objects.select_related(*Network.POINTERS_JOINED).get(pk=dev.pk)
    periods = periods_of([network])[dev.pk, "amd64"]
    assert [(p.name, p.link_name, p.by) for p in periods] == [
        (first.name, link.name, ""),
        (second.name, link.name, "API token ci"),
    ]
    assert periods[0].end == periods[1].start and periods[-1].end is None
    assert current(periods, network.kernel_for("amd64")) == periods[-1]
    assert periods_of([network])[dev.pk, "arm64"] == []


def test_a_switch_by_a_second_operator_names_both(prod, make_kernel, django_user_model):
    alice = django_user_model.objects.create_user("alice")
    bob = django_user_model.objects.create_user("bob")
    newer = make_kernel("zero-os-v2.efi", b"v2")
    prod._point(newer, None, arch="amd64", user=alice, note="", via="", approved_by=bob)
    periods = periods_of([prod])[prod.pk, "amd64"]
    assert (periods[-1].name, periods[-1].by, periods[-1].approved_by) == (
        newer.name,
        "alice",
        "bob",
    )
    assert periods[0].end == periods[-1].start
