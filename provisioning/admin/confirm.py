"""A switch of what a network boots, shown before it is made: the network, what it boots now
and what it will boot, how many machines that reaches at their next boot, and whether it waits
for a second operator. The network's form, promote, the rollbacks, the approval of a pending
switch, and a branch link's move or rollback (every network following it) all pass this page;
its button sends the same request again, confirmed."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from django.template.response import TemplateResponse

from .. import running, switching
from ..models import Arch, BranchLink, Kernel, Network, Node

#: The field that says the operator saw the page and confirmed.
CONFIRMED = "confirmed"


@dataclass(frozen=True)
class Switch:
    network: Network
    arch: str
    now: str
    then: str
    #: Machines whose latest boot was on the network with a kernel for `arch`.
    machines: int
    #: Nodes registered on the network that boot what it boots (no kernel of their own).
    nodes: int
    #: The switch is asked for, and made when a second operator approves it.
    waits: bool


def label(kernel: Kernel | None, link: BranchLink | None) -> str:
    if link is not None:
        return f"{link.kernel.name} (through link {link.name})"
    return kernel.name if kernel is not None else "nothing"


def describe(
    network: Network,
    arch: str,
    kernel: Kernel | None,
    link: BranchLink | None,
    *,
    approving: bool = False,
) -> Switch:
    """The switch of `network`'s `arch` machines to `kernel` or `link`, as it stands now."""
    machines = running.machines_booting(arch, [network.pk]).get(network.pk, 0)
    nodes = Node.objects.filter(network=network, kernel_override=None, link_override=None)
    return Switch(
        network, arch, label(*network.pointer(arch)), label(kernel, link), machines,
        nodes.count(), waits=not approving and switching.needs_second_operator(network),
    )  # fmt: skip


def link_move(link: BranchLink, kernel: Kernel) -> list[Switch]:
    """Moving `link` to `kernel`, as each network following it sees it (a link moves at once:
    nothing waits for a second operator)."""
    then = f"{kernel.name} (through link {link.name})"
    followers = [(Arch.AMD64, network) for network in link.networks.all()]
    followers += [(Arch.ARM64, network) for network in link.networks_arm64.all()]
    return [
        dataclasses.replace(describe(network, arch, None, link), then=then, waits=False)
        for arch, network in followers
    ]


def link_nodes(link: BranchLink) -> str:
    """A sentence on the registered nodes that follow `link` themselves ("" if none)."""
    count = Node.objects.filter(link_override=link).count()
    if not count:
        return ""
    nodes = f"{count} registered node follows" if count == 1 else f"{count} registered nodes follow"
    return f"{nodes} link {link.name} themselves, whatever their network boots."


def confirmed(request) -> bool:
    return request.method == "POST" and request.POST.get(CONFIRMED) == "yes"


def action_fields(request) -> list[tuple[str, str]]:
    """The fields that run the same admin action again on the same rows."""
    kept = [("action", request.POST.get("action", ""))]
    kept += [("_selected_action", pk) for pk in request.POST.getlist("_selected_action")]
    if request.POST.get("select_across"):
        kept.append(("select_across", request.POST["select_across"]))
    return kept


def form_fields(request) -> list[tuple[str, str]]:
    """Every field of a submitted form (the page adds its own CSRF token)."""
    return [
        (name, value)
        for name, values in request.POST.lists()
        if name not in ("csrfmiddlewaretoken", CONFIRMED)
        for value in values
    ]


def page(
    request,
    model_admin,
    *,
    title: str,
    switches: list[Switch],
    keep: list[tuple[str, str]],
    button: str,
    approving: bool = False,
    note: str = "",
) -> TemplateResponse:
    machines = sum(switch.machines for switch in switches)
    return TemplateResponse(
        request,
        "admin/provisioning/confirm_switch.html",
        {
            **model_admin.admin_site.each_context(request),
            "title": title,
            "switches": switches,
            "machines": machines,
            "keep": keep,
            "button": button,
            "approving": approving,
            "note": note,
            "confirmed_field": CONFIRMED,
            "opts": model_admin.model._meta,
            "amd64": Arch.AMD64,
        },
    )
