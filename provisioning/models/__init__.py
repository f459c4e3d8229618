"""What zosboot knows: networks, the kernels they boot, farms, nodes and what nodes did.

One module an idea: `kernels` (the store and its files), `networks` (the kernel pointer and
its audit trail), `links` (branch links), `generation` (the configuration generation),
`fleet` (farms, nodes, boot history and who runs what), `switches` (four eyes: switches
waiting for a second operator), `tokens` (API tokens).
"""

from .fleet import BootEvent, BootToday, Farm, FleetChange, LatestBoot, Node, NodeQuerySet
from .generation import ConfigGeneration
from .kernels import (
    Arch,
    Kernel,
    KernelRecord,
    KernelStorage,
    detect_arch,
    hash_file,
    kernel_upload_to,
)
from .links import BranchLink, LinkChange
from .networks import KernelChange, Network, NetworkQuerySet
from .switches import PendingSwitch
from .tokens import ApiToken

__all__ = [
    "ApiToken",
    "Arch",
    "BootEvent",
    "BootToday",
    "BranchLink",
    "ConfigGeneration",
    "Farm",
    "FleetChange",
    "Kernel",
    "KernelChange",
    "KernelRecord",
    "KernelStorage",
    "LatestBoot",
    "LinkChange",
    "Network",
    "NetworkQuerySet",
    "Node",
    "PendingSwitch",
    "NodeQuerySet",
    "detect_arch",
    "hash_file",
    "kernel_upload_to",
]
