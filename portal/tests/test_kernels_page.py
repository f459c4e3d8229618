"""The kernels page: each network's current kernel and the ones it booted before."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from provisioning.models import Kernel, KernelChange, Network

pytestmark = pytest.mark.django_db


def test_kernels_page_lists_current_kernel_with_sha256_size_and_dates(client, prod, kernel):
    Kernel.objects.filter(pk=kernel.pk).update(uploaded_at=datetime(2025, 5, 1, 8, 30, tzinfo=UTC))
    KernelChange.objects.filter(network=prod).update(
        changed_at=datetime(2025, 6, 2, 12, 0, tzinfo=UTC)
    )
    text = html.unescape(client.get("/kernels/").content.decode())
    section = re.search(r'<section class="kernels" aria-labelledby="net-prod">(.*?)</section>',
                        text, re.S).group(1)  # fmt: skip
    assert '<a href="/kernel/zero-os-development-amd64.efi">zero-os-development-amd64.efi</a>' in (
        section
    )
    assert kernel.sha256 in section
    assert f'title="{kernel.size} bytes"' in section
    assert re.search(r"<dt>Uploaded</dt>\s*<dd><time[^>]*>2025-05-01 08:30 UTC</time>", section)
    assert re.search(r"<dt>Booted since</dt>\s*<dd><time[^>]*>2025-06-02 12:00 UTC</time>", section)
    assert '<a href="/kernel/net/prod.efi">/kernel/net/prod.efi</a>' in section


def test_kernels_page_lists_previous_kernels_newest_first(client, prod, kernel, make_kernel):
    v2 = make_kernel("zero-os-v2.efi", b"two")
    v3 = make_kernel("zero-os-v3.efi", b"three")
    now = timezone.now()
    prod.switch_kernel(v2)
    prod.switch_kernel(v3)
    # Spread the changes in time so the order is the order of the switches.
    for offset, change in enumerate(prod.kernel_changes.order_by("pk")):
        KernelChange.objects.filter(pk=change.pk).update(changed_at=now + timedelta(hours=offset))
    text = client.get("/kernels/").content.decode()
    section = re.search(r'aria-labelledby="net-prod">(.*?)</section>', text, re.S).group(1)
    current, previous = section.split("Previous kernels")
    assert "zero-os-v3.efi" in current and v3.sha256 in current
    names = re.findall(r'<p class="history-name"><a href="/kernel/([^"]+)">', previous)
    assert names == ["zero-os-v2.efi", "zero-os-development-amd64.efi"]
    assert v2.sha256 in previous and kernel.sha256 in previous


def test_kernels_page_names_a_deleted_kernel_without_a_link(client, prod, make_kernel):
    newer = make_kernel("zero-os-new.efi", b"new")
    prod.switch_kernel(newer)
    Kernel.objects.filter(name="zero-os-development-amd64.efi").delete()
    text = client.get("/kernels/").content.decode()
    assert 'zero-os-development-amd64.efi <span class="hint">(file deleted)</span>' in text


def test_kernels_page_shows_networks_without_kernel_and_hides_inactive_ones(client, prod):
    Network.objects.filter(slug="dev").update(active=False)
    text = client.get("/kernels/").content.decode()
    assert 'aria-labelledby="net-test"' in text and "No kernel yet" in text
    assert 'aria-labelledby="net-dev"' not in text


def test_kernels_page_is_linked_from_the_portal(client, prod):
    assert '<a href="/kernels/"' in html.unescape(client.get("/").content.decode())


def test_kernels_page_shows_branch_links_and_the_networks_following_them(client, prod, kernel):
    from provisioning.models import BranchLink

    link, _ = BranchLink.point("zero-os-development-generic.efi", kernel)
    dev, _ = Network.objects.get_or_create(slug="dev", defaults={"name": "Devnet"})
    dev.follow_link(link)
    text = html.unescape(client.get("/kernels/").content.decode())
    links = re.search(r'aria-labelledby="branch-links">(.*?)</section>', text, re.S).group(1)
    assert '<a href="/kernel/zero-os-development-generic.efi">' in links
    assert f'<a href="/kernel/{kernel.name}">{kernel.name}</a>' in links
    dev_section = re.search(r'aria-labelledby="net-dev">(.*?)</section>', text, re.S).group(1)
    assert "Follows the branch link" in dev_section and kernel.name in dev_section


def test_arm64_kernels_have_their_own_history_beside_the_networks_pc_kernels(
    client, prod, kernel, make_kernel
):
    first, second = (
        make_kernel("zero-os-arm64-a.efi", b"a", arch="arm64"),
        make_kernel("zero-os-arm64-b.efi", b"b", arch="arm64"),
    )
    now = timezone.now()
    prod.switch_kernel(first, arch="arm64")
    prod.switch_kernel(second, arch="arm64")
    for offset, change in enumerate(prod.kernel_changes.order_by("pk")):
        KernelChange.objects.filter(pk=change.pk).update(changed_at=now + timedelta(hours=offset))
    text = client.get("/kernels/").content.decode()
    section = re.search(r'aria-labelledby="net-prod">(.*?)</section>', text, re.S).group(1)
    pc, arm = section.split("<h3>arm64 machines</h3>")
    # The PC history knows nothing of the arm64 switches.
    assert "zero-os-arm64" not in pc and "None recorded." in pc
    assert '<a href="/kernel/net/arm64/prod.efi">/kernel/net/arm64/prod.efi</a>' in arm
    current, before = arm.split('<ol class="history">')
    assert second.sha256 in current
    assert re.findall(r'history-name"><a href="/kernel/([^"]+)"', before) == ["zero-os-arm64-a.efi"]


def test_kernels_page_names_the_pxe_kit_that_boots_a_whole_lan(client, prod):
    text = html.unescape(client.get("/kernels/").content.decode())
    assert "the PXE kit" in text and "<code>/pxe-kit/NETWORK/FARM</code>" in text
    assert '<a href="/">the\nboot page</a>' in text


def _section(client, slug: str) -> tuple[str, str]:
    """The network's section of the kernels page: (current kernel, previous kernels)."""
    text = html.unescape(client.get("/kernels/").content.decode())
    section = re.search(rf'aria-labelledby="net-{slug}">(.*?)</section>', text, re.S).group(1)
    current, previous = section.split("Previous kernels")
    return current, previous


def test_a_network_following_a_link_boots_the_build_since_the_link_moved_to_it(
    client, dev_follows_a_link
):
    dev, link, first, second, now = dev_follows_a_link
    moved = timezone.localtime(now - timedelta(days=1))
    current, previous = _section(client, "dev")
    assert f"{moved:%Y-%m-%d %H:%M}" in current and "before the recorded history" not in current
    assert second.name in current and second.name not in previous
    assert first.name in previous and f"through {link.name}" in previous


def test_pinning_the_build_a_followed_link_serves_changes_nothing_machines_boot(
    client, prod, kernel
):
    """prod boots its kernel, then follows a link serving the same build: still booting it
    since the first switch, and nothing under previous kernels."""
    from provisioning.models import BranchLink

    pinned_at = timezone.now().replace(microsecond=0) - timedelta(days=5)
    KernelChange.objects.filter(network=prod).update(changed_at=pinned_at)
    link, _ = BranchLink.point("zero-os-prod.efi", kernel)
    prod.follow_link(link)
    current, previous = _section(client, "prod")
    assert f"{timezone.localtime(pinned_at):%Y-%m-%d %H:%M}" in current
    assert kernel.name not in previous and "None recorded." in previous
