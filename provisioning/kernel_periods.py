"""Which kernel a network's machines booted when, per architecture, and who made it so.

A network's switches (KernelChange) say what it pointed at: a kernel, or a branch link. While
it follows a link, what its machines boot changes each time the link moves (LinkChange), so
the periods here follow the link's moves too: a network that follows a link boots the build
the link served, since the later of the switch to the link and the link's move to that build.
Periods of the same build one after another are one period (pinning the build a followed link
serves does not change what machines boot).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime

from .models import Arch, Kernel, KernelChange, LinkChange, Network


@dataclass(frozen=True)
class Period:
    """A kernel a network's machines booted from `start` (None: before the recorded history)
    to `end` (None: still booting it). `kernel` is None once its file has been deleted;
    `name` is empty when the build is not known (a link deleted since). `link_name` names the
    branch link it came through; `by` who or what made the network boot it (a user, an API
    token, a command), and `approved_by` the second operator of a four-eyes switch."""

    name: str
    kernel: Kernel | None
    start: datetime | None
    end: datetime | None
    link_name: str = ""
    by: str = ""
    approved_by: str = ""


def actor(change: KernelChange | LinkChange) -> str:
    """Who made a change: the user's name, else what acted (a token, a command)."""
    return change.changed_by.get_username() if change.changed_by_id else change.changed_via


@dataclass(frozen=True)
class _Pointer:
    kernel: Kernel | None
    name: str
    link_id: int | None
    link_name: str
    by: str = ""
    approved_by: str = ""


def network_periods(
    network: Network,
    arch: str,
    switches: list[KernelChange],
    moves: dict[int, list[LinkChange]],
) -> list[Period]:
    """The periods of `network`'s `arch` machines, oldest first. `switches` are the network's
    changes for `arch` in time order; `moves` every followed link's moves in time order (see
    :func:`periods_of`, which fetches both)."""
    segments: list[tuple[_Pointer, datetime | None, datetime | None]] = []
    if not switches:
        kernel, link = network.pointer(arch)
        pointer = _Pointer(
            kernel, kernel.name if kernel else "", link.pk if link else None,
            link.name if link else "",
        )  # fmt: skip
        segments.append((pointer, None, None))
    else:
        first = switches[0]
        if first.previous_name or first.previous_link_name:
            before = _Pointer(
                first.previous, first.previous_name, first.previous_link_id,
                first.previous_link_name,
            )  # fmt: skip
            segments.append((before, None, first.changed_at))
        for index, change in enumerate(switches):
            end = switches[index + 1].changed_at if index + 1 < len(switches) else None
            pointer = _Pointer(
                change.new, change.new_name, change.new_link_id, change.new_link_name,
                by=actor(change),
                approved_by=change.approved_by.get_username() if change.approved_by_id else "",
            )  # fmt: skip
            segments.append((pointer, change.changed_at, end))
    periods: list[Period] = []
    for pointer, start, end in segments:
        if pointer.link_name:
            periods.extend(_through_link(network, arch, pointer, start, end, moves))
        elif pointer.name:
            periods.append(
                Period(pointer.name, pointer.kernel, start, end, "", pointer.by,
                       pointer.approved_by)
            )  # fmt: skip
    return _merged(periods)


def _through_link(network, arch, pointer: _Pointer, start, end, moves) -> list[Period]:
    """The builds a followed link served the network between `start` and `end`."""
    if pointer.link_id is None:  # the link is gone, and its moves with it
        return [Period("", None, start, end, pointer.link_name, pointer.by, pointer.approved_by)]
    history = moves.get(pointer.link_id, [])
    kernel, name = _served_at(network, arch, pointer, start, history)
    periods = [Period(name, kernel, start, end, pointer.link_name, pointer.by,
                      pointer.approved_by)]  # fmt: skip
    for move in history:
        if (start is None or move.changed_at > start) and (end is None or move.changed_at < end):
            periods[-1] = replace(periods[-1], end=move.changed_at)
            periods.append(
                Period(move.new_name, move.new, move.changed_at, end, pointer.link_name,
                       actor(move))
            )  # fmt: skip
    # Before its first move (its creation) the link served nothing.
    return [period for period in periods if period.name]


def _served_at(network, arch, pointer: _Pointer, start, history: list[LinkChange]):
    """The (kernel, name) a link served at `start`."""
    earlier = [move for move in history if start is not None and move.changed_at <= start]
    if earlier:
        return earlier[-1].new, earlier[-1].new_name
    if history:
        return history[0].previous, history[0].previous_name
    # A link that never moved since it was made serves what it serves now.
    kernel, link = network.pointer(arch)
    if link is not None and link.pk == pointer.link_id:
        return link.kernel, link.kernel.name
    served = Kernel.objects.filter(links__pk=pointer.link_id).first()
    return served, served.name if served else ""


def _merged(periods: list[Period]) -> list[Period]:
    merged: list[Period] = []
    for period in periods:
        if merged and period.name and merged[-1].name == period.name:
            merged[-1] = replace(merged[-1], end=period.end, link_name=period.link_name)
        else:
            merged.append(period)
    return merged


def periods_of(networks: Iterable[Network]) -> dict[tuple[int, str], list[Period]]:
    """Every period of each network, per architecture: {(network id, arch): periods}, in three
    queries whatever the number of networks. The networks should come with
    Network.POINTERS_JOINED selected."""
    networks = list(networks)
    switches: dict[tuple[int, str], list[KernelChange]] = defaultdict(list)
    rows = (
        KernelChange.objects.filter(network__in=networks)
        .select_related("new", "previous", "changed_by", "approved_by")
        .order_by("changed_at", "pk")
    )
    links: set[int] = set()
    for change in rows:
        switches[change.network_id, change.arch].append(change)
        links.update(pk for pk in (change.new_link_id, change.previous_link_id) if pk)
    for network in networks:
        for arch in Arch:
            link = network.pointer(arch)[1]
            if link is not None:
                links.add(link.pk)
    moves: dict[int, list[LinkChange]] = defaultdict(list)
    moved = (
        LinkChange.objects.filter(link__in=links)
        .select_related("new", "previous", "changed_by")
        .order_by("changed_at", "pk")
    )
    for move in moved:
        moves[move.link_id].append(move)
    return {
        (network.pk, arch): network_periods(network, arch, switches[network.pk, arch], moves)
        for network in networks
        for arch in Arch
    }


def current(periods: list[Period], kernel: Kernel | None) -> Period | None:
    """The period of what the network boots now (`kernel`), if the history knows it."""
    if kernel is None or not periods:
        return None
    last = periods[-1]
    return last if last.end is None and last.name == kernel.name else None
