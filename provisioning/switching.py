"""What the admin and the API call to change what a network boots: made at once, or, on a
network ZOSBOOT_FOUR_EYES_NETWORKS lists, asked for and made when a second staff user
approves (models.PendingSwitch).

Commands and imports (import_kernel --network, import_legacy, a link moved by a publish) are
the deployment's own hands and switch directly; the signature policy applies to them all the
same (Network._point)."""

from __future__ import annotations

from django.conf import settings

from .models import Arch, BranchLink, Kernel, KernelChange, Network, PendingSwitch

Result = KernelChange | PendingSwitch | None


def needs_second_operator(network: Network) -> bool:
    return network.slug in settings.ZOSBOOT_FOUR_EYES_NETWORKS


def point(
    network: Network,
    kernel: Kernel | None = None,
    link: BranchLink | None = None,
    *,
    arch: str = Arch.AMD64,
    user=None,
    via: str = "",
    note: str = "",
) -> Result:
    """Pin `kernel` or follow `link` on the network's `arch` machines, or ask to."""
    if not needs_second_operator(network):
        return network._point(kernel, link, arch=arch, user=user, note=note, via=via)
    network.check_target(kernel, link, arch=arch)  # refuse now what approval would refuse
    if network.pointer(arch) == (kernel, link):
        return None
    return PendingSwitch.ask(network, kernel, link, arch=arch, user=user, via=via, note=note)


def rollback(network: Network, *, arch: str = Arch.AMD64, user=None, via: str = "") -> Result:
    """Back to what the network booted before its last switch (KernelChange.NoPrevious)."""
    last = network.last_switch(arch)
    note = f"rollback from {last.new_link_name or last.new_name}"
    return point(network, last.previous, last.previous_link, arch=arch, user=user, via=via,
                 note=note)  # fmt: skip


def restore(network: Network, change: KernelChange, *, user=None, via: str = "") -> Result:
    """Back to what any entry of the history set (KernelChange.NoPrevious when it is gone)."""
    network.check_restorable(change)
    when = f"{change.changed_at:%Y-%m-%d %H:%M:%S}"
    note = f"rollback to the switch of {when} ({change.new_label})"
    return point(network, change.new, change.new_link, arch=change.arch, user=user, via=via,
                 note=note)  # fmt: skip


def said(network: Network, result: Result, what: str) -> str:
    """One sentence for the admin's message or the API's answer."""
    if isinstance(result, PendingSwitch):
        return (
            f"Network {network.slug} needs a second operator: the switch to {what} waits for "
            "approval (Pending kernel switches)."
        )
    if result is None:
        return f"Network {network.slug} boots {what} already."
    return f"Network {network.slug} now boots {what}."
