"""Networks: read them, switch what they boot (a kernel or a branch link), roll back."""

from __future__ import annotations

from ninja import Status

from ..models import KernelChange, Network
from . import api, can_read, can_switch_networks, via
from .lookups import _kernel, _link, _network
from .schemas import ChangeOut, Message, NetworkOut, SwitchIn, answers


@api.get("/networks", response=answers(list[NetworkOut]), auth=can_read, tags=["networks"])
def list_networks(request):
    return [NetworkOut.of(n) for n in Network.objects.select_related("kernel", "link__kernel")]


@api.get("/networks/{slug}", response=answers(NetworkOut), auth=can_read, tags=["networks"])
def get_network(request, slug: str):
    return NetworkOut.of(_network(slug))


@api.get(
    "/networks/{slug}/changes", response=answers(list[ChangeOut]), auth=can_read, tags=["networks"]
)
def network_changes(request, slug: str):
    network = _network(slug)
    changes = KernelChange.objects.filter(network=network).select_related("changed_by")
    return [ChangeOut.of(change) for change in changes]


@api.post(
    "/networks/{slug}/kernel",
    response=answers({200: NetworkOut, 400: Message}),
    auth=can_switch_networks,
    tags=["networks"],
)
def switch_network(request, slug: str, body: SwitchIn):
    """Pin the network to a kernel, or make it follow a branch link."""
    network = _network(slug)
    if (body.kernel is None) == (body.link is None):
        return Status(400, {"detail": "give either kernel or link"})
    if body.link is not None:
        network.follow_link(_link(body.link), note="api", via=via(request))
    else:
        network.switch_kernel(_kernel(body.kernel), note="api", via=via(request))
    return Status(200, NetworkOut.of(_network(slug)))


@api.post(
    "/networks/{slug}/rollback",
    response=answers({200: NetworkOut, 409: Message}),
    auth=can_switch_networks,
    tags=["networks"],
)
def rollback_network(request, slug: str, to: int | None = None):
    """Go back to what the network booted before its last switch, or with `to` (a change's
    `id` from /changes) to what any earlier switch set."""
    network = _network(slug)
    try:
        if to is None:
            network.rollback_kernel(via=via(request))
        else:
            change = KernelChange.objects.filter(network=network, pk=to).first()
            if change is None:
                return Status(409, {"detail": f"network {slug} has no change {to}"})
            network.restore(change, via=via(request))
    except KernelChange.NoPrevious as exc:
        return Status(409, {"detail": str(exc)})
    return Status(200, NetworkOut.of(_network(slug)))
