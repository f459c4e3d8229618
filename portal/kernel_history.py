"""Which kernel each network booted when, per architecture, read from the KernelChange audit
trail."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Max, Prefetch, QuerySet

from provisioning.models import Arch, BranchLink, Kernel, KernelChange, Network


@dataclass(frozen=True)
class Period:
    """A kernel a network booted, from `start` (None: before the recorded history) to `end`
    (None: still booting it). `kernel` is None once the kernel file has been deleted."""

    name: str
    kernel: Kernel | None
    start: datetime | None
    end: datetime | None


@dataclass(frozen=True)
class NetworkKernels:
    network: Network
    current: Kernel | None
    since: datetime | None
    previous: list[Period] = field(default_factory=list)
    arch: str = Arch.AMD64
    #: The same for the network's arm64 machines (on the amd64 entry; None: never had one).
    arm64: NetworkKernels | None = None

    @property
    def path(self) -> str:
        """Where the network's current kernel for this architecture is always served."""
        return self.network.kernel_path_for(self.arch)


def network_kernels(network: Network, arch: str = Arch.AMD64) -> NetworkKernels:
    """The network's current kernel for `arch` machines and, newest first, the ones they
    booted before.

    Expects `kernel_changes` prefetched in ascending order (see :func:`all_network_kernels`).
    """
    changes = [change for change in network.kernel_changes.all() if change.arch == arch]
    periods: list[Period] = []
    if changes and changes[0].previous_name:
        first = changes[0]
        periods.append(Period(first.previous_name, first.previous, None, first.changed_at))
    for index, change in enumerate(changes):
        if change.new_name:
            end = changes[index + 1].changed_at if index + 1 < len(changes) else None
            periods.append(Period(change.new_name, change.new, change.changed_at, end))
    current = network.kernel_for(arch)
    since = None
    if periods and periods[-1].end is None and periods[-1].kernel == current:
        since = periods[-1].start
    previous = [period for period in reversed(periods) if period.end is not None]
    arm64 = None
    if arch == Arch.AMD64:
        arm64 = network_kernels(network, Arch.ARM64)
        if arm64.current is None and not arm64.previous:
            arm64 = None
    return NetworkKernels(network, current, since, previous, arch, arm64)


def all_network_kernels() -> list[NetworkKernels]:
    """Every active network's kernels, in three queries whatever the number of networks."""
    changes = KernelChange.objects.select_related("new", "previous").order_by("changed_at", "pk")
    networks = (
        Network.objects.active()
        .select_related(*Network.POINTERS_JOINED)
        .prefetch_related(Prefetch("kernel_changes", queryset=changes))
        .order_by("slug")
    )
    return [network_kernels(network) for network in networks]


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
