"""Farms, nodes (create, approve a waiting one, disable, enable) and the boot history."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from ninja import Query, Status

from .. import timeline
from ..models import BootEvent, Farm, FleetChange, LatestBoot, Node
from . import api, can_manage_nodes, can_read, via
from .lookups import _farm, _mac, _network, _node
from .schemas import (
    ApproveIn,
    BootOut,
    EventFilter,
    EventOut,
    FarmId,
    FarmIn,
    FarmOut,
    FarmPatch,
    Message,
    MilestoneOut,
    NodeIn,
    NodeMac,
    NodeOut,
    TimelineOut,
    answers,
)


@api.get("/farms", response=answers(list[FarmOut]), auth=can_read, tags=["farms"])
def list_farms(request):
    return list(Farm.objects.all())


@api.post(
    "/farms", response=answers({201: FarmOut, 409: Message}), auth=can_manage_nodes, tags=["farms"]
)
def create_farm(request, body: FarmIn):
    if Farm.objects.filter(farmer_id=body.farmer_id).exists():
        return Status(409, {"detail": f"farm {body.farmer_id} exists already"})
    farm = Farm.objects.create(**body.dict())
    FleetChange.record(farm, "created", via=via(request))
    return Status(201, farm)


@api.patch("/farms/{farmer_id}", response=answers(FarmOut), auth=can_manage_nodes, tags=["farms"])
def update_farm(request, farmer_id: FarmId, body: FarmPatch):
    farm = _farm(farmer_id)
    changes = body.dict(exclude_none=True)
    for field, value in changes.items():
        setattr(farm, field, value)
    farm.save()
    if changes:
        FleetChange.record(farm, f"changed {', '.join(sorted(changes))}", via=via(request))
    return farm


@api.get("/nodes", response=answers(list[NodeOut]), auth=can_read, tags=["nodes"])
def list_nodes(request, status: str | None = Query(None, pattern="^(pending|enabled|disabled)$")):
    found = Node.objects.select_related(
        "farm", "network__kernel", "network__link__kernel", "kernel_override",
        "link_override__kernel",
    )  # fmt: skip
    if status == "pending":
        found = found.pending()
    elif status is not None:
        found = found.exclude(pk__in=Node.objects.pending()).filter(enabled=status == "enabled")
    return [NodeOut.of(node) for node in found]


@api.get("/nodes/{mac}", response=answers(NodeOut), auth=can_read, tags=["nodes"])
def get_node(request, mac: NodeMac):
    return NodeOut.of(_node(mac))


@api.get("/nodes/{mac}/timeline", response=answers(TimelineOut), auth=can_read, tags=["nodes"])
def node_timeline(request, mac: NodeMac):
    """The machine's boots of the last 7 days, milestone by milestone (what the service served
    and what the machine reported), and where its latest boot stands."""
    mac = _mac(mac)
    latest = LatestBoot.objects.filter(mac=mac).order_by("-milestone_at").first()
    boots = [
        BootOut(
            started=boot.started,
            network=boot.network,
            farm=boot.farmer_id,
            kernel=boot.kernel,
            outcome=boot.outcome,
            seconds_to_arrival=boot.seconds_to_arrival,
            failures=boot.failures,
            milestones=[
                MilestoneOut(kind=m.kind, at=m.at, label=m.label, detail=m.detail)
                for m in boot.milestones
            ],
        )  # fmt: skip
        for boot in timeline.node_timeline(mac)
    ]
    return TimelineOut(
        mac=mac,
        state=timeline.state_of(latest) if latest else None,
        reason=timeline.reason(latest) if latest else "not seen by this boot service",
        boots=boots,
    )


@api.post(
    "/nodes",
    response=answers({201: NodeOut, 400: Message, 409: Message}),
    auth=can_manage_nodes,
    tags=["nodes"],
)
def create_node(request, body: NodeIn):
    mac = _mac(body.mac)
    if Node.objects.filter(mac=mac).exists():
        return Status(409, {"detail": f"node {mac} exists already"})
    node = Node(
        mac=mac,
        farm=_farm(body.farm) if body.farm is not None else None,
        network=_network(body.network) if body.network is not None else None,
        extra_args=body.extra_args,
    )
    try:
        node.full_clean()
    except ValidationError as exc:
        return Status(400, {"detail": "; ".join(exc.messages)})
    node.save()
    FleetChange.record(node, "created", via=via(request))
    return Status(201, NodeOut.of(_node(mac)))


@api.post("/nodes/{mac}/approve", response=answers(NodeOut), auth=can_manage_nodes, tags=["nodes"])
def approve_node(request, mac: NodeMac, body: ApproveIn):
    """Give a waiting node its farm and network: it boots at its next retry."""
    node = _node(mac)
    Node.objects.filter(pk=node.pk).approve(
        _farm(body.farm), _network(body.network), via=via(request)
    )
    return NodeOut.of(_node(mac))


@api.post("/nodes/{mac}/disable", response=answers(NodeOut), auth=can_manage_nodes, tags=["nodes"])
def disable_node(request, mac: NodeMac):
    Node.objects.filter(pk=_node(mac).pk).set_enabled(False, via=via(request))
    return NodeOut.of(_node(mac))


@api.post("/nodes/{mac}/enable", response=answers(NodeOut), auth=can_manage_nodes, tags=["nodes"])
def enable_node(request, mac: NodeMac):
    Node.objects.filter(pk=_node(mac).pk).set_enabled(True, via=via(request))
    return NodeOut.of(_node(mac))


@api.get("/boot-events", response=answers(list[EventOut]), auth=can_read, tags=["history"])
def boot_events(request, filters: Query[EventFilter]):
    """The newest boot events first, filtered by node, farm, kernel and time."""
    found = BootEvent.objects.select_related("network")
    if filters.node:
        found = found.filter(mac=_mac(filters.node))
    if filters.farm:
        found = found.filter(farmer_id=filters.farm)
    if filters.kernel:
        found = found.filter(kernel_name=filters.kernel)
    if filters.since:
        found = found.filter(created_at__gte=filters.since)
    if filters.until:
        found = found.filter(created_at__lt=filters.until)
    return [
        EventOut(
            created_at=e.created_at,
            kind=e.kind,
            client_ip=e.client_ip,
            network=e.network.slug if e.network else None,
            farmer_id=e.farmer_id,
            mac=e.mac,
            kernel_name=e.kernel_name,
            kernel_sha256=e.kernel_sha256,
            path=e.path,
        )  # fmt: skip
        for e in found[: filters.limit]
    ]
