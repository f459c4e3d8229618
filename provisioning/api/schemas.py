"""What the API takes and gives, declared once: validation and the OpenAPI document both
come from here."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated

from ninja import Field, Path, Schema
from pydantic import AfterValidator, BeforeValidator, ConfigDict, model_validator

from ..models import Arch, Kernel, Network, Node
from ..validators import FARMER_ID_MAX, KERNEL_NAME_RE, NETWORK_SLUG_RE

# PostgreSQL text cannot hold a NUL character (SQLite's can): free text a client writes or
# filters by is refused with a 422, never left to fail in the database.
NO_NUL = r"^[^\x00]*$"


def _a_time_in_words(value: object) -> object:
    """A time is written as ISO 8601 text; a bare number is refused, not read as a Unix time."""
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _ISO_DATE.match(value):
        raise ValueError("give a time as ISO 8601 text, e.g. 2025-05-01T09:00:00Z")
    return value


_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _in_utc(value: datetime) -> datetime:
    """A time given with any offset (none: UTC) as UTC, the one form every database takes
    (PostgreSQL refuses offsets beyond 15:59 that ISO 8601 allows)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("time out of range") from None


UtcDatetime = Annotated[datetime, BeforeValidator(_a_time_in_words), AfterValidator(_in_utc)]

# What a path parameter may be, in the OpenAPI document and checked before the operation runs
# (422 naming it). Lookups answer 404 for what is well-formed and unknown.
_MAC_PATTERN = r"^(?:[0-9A-Fa-f]{2}[:-]){5}[0-9A-Fa-f]{2}$|^[0-9A-Fa-f]{12}$"


KernelName = Annotated[
    str, Path(..., pattern=f"^{KERNEL_NAME_RE.pattern}$", description="The kernel's name.")
]
LinkName = Annotated[
    str, Path(..., pattern=f"^{KERNEL_NAME_RE.pattern}$", description="The branch link's name.")
]
NetworkSlug = Annotated[
    str, Path(..., pattern=f"^{NETWORK_SLUG_RE.pattern}$", description="The network's slug.")
]
NodeMac = Annotated[
    str,
    Path(..., pattern=_MAC_PATTERN,
         description="52:54:00:ab:cd:ef, 52-54-00-ab-cd-ef or 525400abcdef."),
]  # fmt: skip
FarmId = Annotated[int, Path(..., ge=1, le=FARMER_ID_MAX, description="The farm ID.")]


class Message(Schema):
    detail: str


class Pending(Schema):
    pending: int = Field(description="The pending switch, approved or rejected in the admin.")
    detail: str


class Invalid(Schema):
    detail: list[dict] = Field(description="What is wrong with which field of the request.")


# Every operation may answer these; declared so the document tells the whole truth.
_ERRORS = {400: Message, 401: Message, 403: Message, 404: Message, 409: Message, 422: Invalid}


def answers(ok) -> dict:
    """The responses of an operation: its own, and the errors every operation may give."""
    return {**_ERRORS, **(ok if isinstance(ok, dict) else {200: ok})}


class KernelOut(Schema):
    name: str
    arch: str = Field(description="What it is built for: amd64 or arm64.")
    sha256: str
    size: int
    uploaded_at: datetime
    notes: str
    networks: list[str] = Field(
        description="Networks that boot it on its architecture's machines (pinned or through a "
        "link)."
    )
    links: list[str] = Field(description="Branch links that point at it.")
    signed: bool = Field(description="It carries a release signature (/kernel/NAME.sig).")
    signer: str = Field(description="Who signed it, as checked on upload (empty: not checked).")

    @staticmethod
    def of(kernel: Kernel) -> KernelOut:
        pinned = {n.slug for n in [*kernel.networks.all(), *kernel.networks_arm64.all()]}
        linked = {
            n.slug for link in kernel.links.all()
            for n in [*link.networks.all(), *link.networks_arm64.all()]
        }  # fmt: skip
        return KernelOut(
            name=kernel.name, arch=kernel.arch, sha256=kernel.sha256, size=kernel.size,
            uploaded_at=kernel.uploaded_at, notes=kernel.notes,
            networks=sorted(pinned | linked),
            links=sorted(link.name for link in kernel.links.all()),
            signed=bool(kernel.signature), signer=kernel.signer,
        )  # fmt: skip


class NetworkOut(Schema):
    slug: str
    name: str
    active: bool
    kernel: str | None = Field(description="The kernel amd64 machines boot now.")
    link: str | None = Field(description="The branch link it follows, if it follows one.")
    arm64_kernel: str | None = Field(description="The kernel arm64 machines boot now.")
    arm64_link: str | None = Field(description="The branch link it follows on arm64 machines.")
    extra_args: str

    @staticmethod
    def of(network: Network) -> NetworkOut:
        current, arm64 = network.current_kernel, network.current_arm64_kernel
        return NetworkOut(
            slug=network.slug, name=network.name, active=network.active,
            kernel=current.name if current else None,
            link=network.link.name if network.link_id else None,
            arm64_kernel=arm64.name if arm64 else None,
            arm64_link=network.link_arm64.name if network.link_arm64_id else None,
            extra_args=network.extra_args,
        )  # fmt: skip


class ChangeOut(Schema):
    id: int = Field(description="Give it as `to` to roll back to this switch.")
    changed_at: datetime
    previous: str
    new: str
    changed_by: str
    note: str
    arch: str | None = Field(
        None, description="A network's change: which architecture's kernel it switched."
    )

    @staticmethod
    def of(change) -> ChangeOut:
        who = change.changed_by.get_username() if change.changed_by else change.changed_via
        previous = getattr(change, "previous_label", change.previous_name)
        new = getattr(change, "new_label", change.new_name)
        return ChangeOut(
            id=change.pk, changed_at=change.changed_at, previous=previous, new=new,
            changed_by=who or "", note=change.note, arch=getattr(change, "arch", None),
        )  # fmt: skip


class SwitchIn(Schema):
    kernel: str | None = Field(None, description="Pin this kernel (by name) ...")
    link: str | None = Field(None, description="... or follow this branch link.")
    arch: Arch = Field(Arch.AMD64, description="On the machines of this architecture.")


class LinkOut(Schema):
    name: str
    kernel: str


class PointIn(Schema):
    kernel: str


class FarmOut(Schema):
    farmer_id: int
    name: str
    active: bool
    notes: str


class FarmIn(Schema):
    farmer_id: int = Field(ge=1, le=FARMER_ID_MAX, strict=True)
    name: str = Field("", max_length=100, pattern=NO_NUL)
    active: bool = Field(True, strict=True)
    notes: str = Field("", pattern=NO_NUL)


class FarmPatch(Schema):
    """The fields to change; at least one, and nothing else."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, max_length=100, pattern=NO_NUL)
    active: bool | None = Field(None, strict=True)
    notes: str | None = Field(None, pattern=NO_NUL)

    @model_validator(mode="after")
    def _changes_something(self) -> FarmPatch:
        if all(value is None for value in (self.name, self.active, self.notes)):
            raise ValueError("give at least one of name, active, notes")
        return self


class NodeOut(Schema):
    mac: str
    status: str = Field(description="pending, enabled or disabled")
    farm: int | None
    network: str | None
    kernel: str | None = Field(description="What it boots (its override, or its network's).")
    extra_args: str
    last_seen: datetime | None
    last_ip: str | None
    boot_count: int

    @staticmethod
    def of(node: Node) -> NodeOut:
        kernel = node.kernel
        status = "pending" if node.is_pending else "enabled" if node.enabled else "disabled"
        return NodeOut(
            mac=node.mac, status=status, farm=node.farm.farmer_id if node.farm_id else None,
            network=node.network.slug if node.network_id else None,
            kernel=kernel.name if kernel else None, extra_args=node.extra_args,
            last_seen=node.last_seen, last_ip=node.last_ip, boot_count=node.boot_count,
        )  # fmt: skip


class NodeIn(Schema):
    mac: str
    farm: int | None = Field(None, strict=True)
    network: str | None = None
    extra_args: str = Field("", max_length=512)


class ApproveIn(Schema):
    farm: int = Field(strict=True)
    network: str


class EventOut(Schema):
    created_at: datetime
    kind: str
    client_ip: str | None
    network: str | None
    farmer_id: int | None
    mac: str
    kernel_name: str
    kernel_sha256: str
    path: str


class EventFilter(Schema):
    node: str | None = Field(None, description="MAC address, any of the three forms")
    farm: int | None = Field(None, ge=1, le=4294967295)
    kernel: str | None = Field(None, max_length=200, pattern=NO_NUL)
    since: UtcDatetime | None = None
    until: UtcDatetime | None = None
    limit: int = Field(100, ge=1, le=1000)


class NodeRunning(Schema):
    mac: str = Field(description="Empty when the machine is known only by its address.")
    farm: int | None
    client_ip: str | None
    since: datetime = Field(description="Its first download of this kernel (latest run).")


class MilestoneOut(Schema):
    kind: str = Field(description="script, kernel, arrived, failed, no-network, start-failed.")
    at: datetime
    label: str
    detail: str


class BootOut(Schema):
    started: datetime = Field(description="When its boot script was served.")
    network: str
    farm: int | None
    kernel: str
    outcome: str = Field(description="booted, could not start, no network, failed, in progress")
    seconds_to_arrival: float | None = Field(
        description="From the script served to the kernel arrived, by the service's clock."
    )
    failures: int = Field(description="Failed kernel downloads.")
    milestones: list[MilestoneOut]


class TimelineOut(Schema):
    mac: str
    state: str | None = Field(
        description="Its latest boot: booted, in progress, stuck or failing (none: never seen)."
    )
    reason: str = Field(description="Why, in one sentence.")
    boots: list[BootOut] = Field(description="Its boots of the last 7 days, newest first.")
