"""What the admin and the API call to change what a network boots: made at once, or, on a
network ZOSBOOT_FOUR_EYES_NETWORKS lists, asked for and made when a second staff user
approves (models.PendingSwitch).

Commands and imports (import_kernel --network, import_legacy, a link moved by a publish) are
the deployment's own hands and switch directly; the signature policy applies to them all the
same (Network._point)."""

from __future__ import annotations

from django.conf import settings

from .models import Arch, BranchLink, Kernel, KernelChange, Network, PendingSwitch
from .models.networks import Step

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
    return _take(network, network.rollback_step(arch), user=user, via=via)


def restore(network: Network, change: KernelChange, *, user=None, via: str = "") -> Result:
    """Back to what any entry of the history set (KernelChange.NoPrevious when it is gone)."""
    return _take(network, network.restore_step(change), user=user, via=via)


def _take(network: Network, step: Step, *, user, via: str) -> Result:
    return point(network, *step.pointer, arch=step.arch, user=user, via=via, note=step.note)


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
