"""Finding what a path names, with the answer an API client reads when it is not there."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from ninja.errors import HttpError

from ..models import BranchLink, Farm, Kernel, Network, Node
from ..validators import KERNEL_NAME_RE, NETWORK_SLUG_RE, normalise_mac


def _kernel(name: str) -> Kernel:
    if not KERNEL_NAME_RE.fullmatch(name):
        raise HttpError(400, "kernel names use letters, digits and . _ + -")
    kernel = Kernel.objects.filter(name=name).first()
    if kernel is None:
        raise HttpError(404, f"no kernel named {name}")
    return kernel


def _network(slug: str) -> Network:
    if not NETWORK_SLUG_RE.fullmatch(slug):
        raise HttpError(400, "network names are lower-case letters, digits and dashes")
    network = Network.objects.select_related(*Network.POINTERS_JOINED).filter(slug=slug).first()
    if network is None:
        raise HttpError(404, f"no network named {slug}")
    return network


def _link(name: str) -> BranchLink:
    if not KERNEL_NAME_RE.fullmatch(name):
        raise HttpError(400, "link names use letters, digits and . _ + -")
    link = BranchLink.objects.select_related("kernel").filter(name=name).first()
    if link is None:
        raise HttpError(404, f"no branch link named {name}")
    return link


def _farm(farmer_id: int) -> Farm:
    farm = Farm.objects.filter(farmer_id=farmer_id).first()
    if farm is None:
        raise HttpError(404, f"no farm {farmer_id}")
    return farm


def _mac(mac: str) -> str:
    try:
        return normalise_mac(mac)
    except ValidationError as exc:
        raise HttpError(400, exc.messages[0]) from None


def _node(mac: str) -> Node:
    node = Node.objects.for_mac(_mac(mac))
    if node is None:
        raise HttpError(404, f"no node {mac}")
    return node
