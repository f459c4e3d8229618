"""Networks: read them, switch what they boot (a kernel or a branch link), roll back."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from ninja import Status

from .. import switching
from ..models import Arch, KernelChange, Network, PendingSwitch
from . import api, can_read, can_switch_networks, via
from .lookups import _kernel, _link, _network
from .schemas import ChangeOut, Message, NetworkOut, NetworkSlug, Pending, SwitchIn, answers


@api.get("/networks", response=answers(list[NetworkOut]), auth=can_read, tags=["networks"])
def list_networks(request):
    return [NetworkOut.of(n) for n in Network.objects.select_related(*Network.POINTERS_JOINED)]


@api.get("/networks/{slug}", response=answers(NetworkOut), auth=can_read, tags=["networks"])
def get_network(request, slug: NetworkSlug):
    return NetworkOut.of(_network(slug))


@api.get(
    "/networks/{slug}/changes", response=answers(list[ChangeOut]), auth=can_read, tags=["networks"]
)
def network_changes(request, slug: NetworkSlug):
    network = _network(slug)
    changes = KernelChange.objects.filter(network=network).select_related("changed_by")
    return [ChangeOut.of(change) for change in changes]


PENDING = {202: Pending}


@api.post(
    "/networks/{slug}/kernel",
    response=answers({200: NetworkOut, 400: Message, 409: Message, **PENDING}),
    auth=can_switch_networks,
    tags=["networks"],
)
def switch_network(request, slug: NetworkSlug, body: SwitchIn):
    """Pin the network's machines of `arch` (default amd64) to a kernel built for it, or make
    them follow a branch link. On a network that needs a second operator (four eyes) the
    switch waits for a staff user's approval in the admin: 202 and its id."""
    network = _network(slug)
    if (body.kernel is None) == (body.link is None):
        return Status(400, {"detail": "give either kernel or link"})
    kernel = _kernel(body.kernel) if body.kernel is not None else None
    link = _link(body.link) if body.link is not None else None
    try:
        result = switching.point(
            network, kernel, link, arch=body.arch, via=via(request), note="api"
        )
    except ValidationError as exc:
        return Status(409, {"detail": exc.messages[0]})
    return _answer(network, result, link.name if link else kernel.name)


@api.post(
    "/networks/{slug}/rollback",
    response=answers({200: NetworkOut, 409: Message, **PENDING}),
    auth=can_switch_networks,
    tags=["networks"],
)
def rollback_network(request, slug: NetworkSlug, to: int | None = None, arch: Arch = Arch.AMD64):
    """Go back to what the network's `arch` machines (default amd64) booted before its last
    switch, or with `to` (a change's `id` from /changes) to what any earlier switch set, on
    that change's architecture. Four eyes as for a switch."""
    network = _network(slug)
    try:
        if to is None:
            result = switching.rollback(network, arch=arch, via=via(request))
        else:
            change = KernelChange.objects.filter(network=network, pk=to).first()
            if change is None:
                return Status(409, {"detail": f"network {slug} has no change {to}"})
            result = switching.restore(network, change, via=via(request))
    except KernelChange.NoPrevious as exc:
        return Status(409, {"detail": str(exc)})
    except ValidationError as exc:
        return Status(409, {"detail": exc.messages[0]})
    return _answer(network, result, "the earlier kernel")


def _answer(network, result, what: str):
    if isinstance(result, PendingSwitch):
        return Status(202, {"pending": result.pk, "detail": switching.said(network, result, what)})
    return Status(200, NetworkOut.of(_network(network.slug)))
