"""Which kernel each network booted when, per architecture, for the kernels page (the
periods come from provisioning.kernel_periods: switches, and the moves of followed links)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Max, QuerySet

from provisioning.kernel_periods import Period, current, periods_of
from provisioning.models import Arch, BranchLink, Kernel, Network


@dataclass(frozen=True)
class NetworkKernels:
    network: Network
    current: Kernel | None
    since: datetime | None
    previous: list[Period] = field(default_factory=list)
    arch: str = Arch.AMD64
    #: The same for the network's arm64 machines (on the amd64 entry; None: never had one).
    arm64: NetworkKernels | None = None
    #: The branch link the current kernel comes through, if it follows one.
    link_name: str = ""

    @property
    def path(self) -> str:
        """Where the network's current kernel for this architecture is always served."""
        return self.network.kernel_path_for(self.arch)


def network_kernels(
    network: Network, periods: dict[tuple[int, str], list[Period]], arch: str = Arch.AMD64
) -> NetworkKernels:
    """The network's current kernel for `arch` machines, since when, and, newest first, the
    ones they booted before (`periods` from provisioning.kernel_periods.periods_of)."""
    mine = periods[network.pk, arch]
    kernel = network.kernel_for(arch)
    now = current(mine, kernel)
    previous = [period for period in reversed(mine) if period.end is not None]
    link = network.pointer(arch)[1]
    arm64 = None
    if arch == Arch.AMD64:
        arm64 = network_kernels(network, periods, Arch.ARM64)
        if arm64.current is None and not arm64.previous:
            arm64 = None
    return NetworkKernels(
        network, kernel, now.start if now else None, previous, arch, arm64,
        link.name if link else "",
    )  # fmt: skip


def all_network_kernels() -> list[NetworkKernels]:
    """Every active network's kernels, in a few queries whatever the number of networks."""
    networks = list(
        Network.objects.active().select_related(*Network.POINTERS_JOINED).order_by("slug")
    )
    periods = periods_of(networks)
    return [network_kernels(network, periods) for network in networks]


def branch_links() -> QuerySet[BranchLink]:
    """Every branch link with the build it serves and since when (`moved_at`)."""
    return (
        BranchLink.objects.select_related("kernel")
        .annotate(moved_at=Max("changes__changed_at"))
        .order_by("name")
    )


def current_by_kernel() -> list[tuple[Kernel, list[str]]]:
    """Each kernel an active network boots now, with who boots it (`prod:amd64`), in the
    order of their names."""
    users: dict[int, tuple[Kernel, list[str]]] = {}
    for network in Network.objects.active().select_related(*Network.POINTERS_JOINED):
        for arch in Arch:
            kernel = network.kernel_for(arch)
            if kernel is not None:
                users.setdefault(kernel.pk, (kernel, []))[1].append(f"{network.slug}:{arch}")
    return sorted(users.values(), key=lambda pair: pair[0].name)
