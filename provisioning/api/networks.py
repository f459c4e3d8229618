"""Networks: read them, switch what they boot (a kernel or a branch link), roll back."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from ninja import Status

from ..models import Arch, KernelChange, Network
from . import api, can_read, can_switch_networks, via
from .lookups import _kernel, _link, _network
from .schemas import ChangeOut, Message, NetworkOut, SwitchIn, answers


@api.get("/networks", response=answers(list[NetworkOut]), auth=can_read, tags=["networks"])
def list_networks(request):
    return [NetworkOut.of(n) for n in Network.objects.select_related(*Network.POINTERS_JOINED)]


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
    response=answers({200: NetworkOut, 400: Message, 409: Message}),
    auth=can_switch_networks,
    tags=["networks"],
)
def switch_network(request, slug: str, body: SwitchIn):
    """Pin the network's machines of `arch` (default amd64) to a kernel built for it, or make
    them follow a branch link."""
    network = _network(slug)
    if (body.kernel is None) == (body.link is None):
        return Status(400, {"detail": "give either kernel or link"})
    try:
        if body.link is not None:
            network.follow_link(_link(body.link), note="api", via=via(request), arch=body.arch)
        else:
            network.switch_kernel(
                _kernel(body.kernel), note="api", via=via(request), arch=body.arch
            )
    except ValidationError as exc:
        return Status(409, {"detail": exc.messages[0]})
    return Status(200, NetworkOut.of(_network(slug)))


@api.post(
    "/networks/{slug}/rollback",
    response=answers({200: NetworkOut, 409: Message}),
    auth=can_switch_networks,
    tags=["networks"],
)
def rollback_network(request, slug: str, to: int | None = None, arch: Arch = Arch.AMD64):
    """Go back to what the network's `arch` machines (default amd64) booted before its last
    switch, or with `to` (a change's `id` from /changes) to what any earlier switch set, on
    that change's architecture."""
    network = _network(slug)
    try:
        if to is None:
            network.rollback_kernel(via=via(request), arch=arch)
        else:
            change = KernelChange.objects.filter(network=network, pk=to).first()
            if change is None:
                return Status(409, {"detail": f"network {slug} has no change {to}"})
            network.restore(change, via=via(request))
    except KernelChange.NoPrevious as exc:
        return Status(409, {"detail": str(exc)})
    except ValidationError as exc:
        return Status(409, {"detail": exc.messages[0]})
    return Status(200, NetworkOut.of(_network(slug)))
