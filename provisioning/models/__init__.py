"""What zosboot knows: networks, the kernels they boot, farms, nodes and what nodes did.

One module an idea: `kernels` (the store and its files), `networks` (the kernel pointer, its
audit trail, the configuration generation), `fleet` (farms, nodes, boot history).
"""

from .fleet import BootEvent, Farm, Node, NodeQuerySet
from .kernels import Kernel, KernelStorage, hash_file, kernel_upload_to
from .networks import ConfigGeneration, KernelChange, Network, NetworkQuerySet

__all__ = [
    "BootEvent",
    "ConfigGeneration",
    "Farm",
    "Kernel",
    "KernelChange",
    "KernelStorage",
    "Network",
    "NetworkQuerySet",
    "Node",
    "NodeQuerySet",
    "hash_file",
    "kernel_upload_to",
]
