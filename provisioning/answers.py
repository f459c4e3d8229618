"""One boot answer: from a URL's parts or a MAC address to what the node is told.

An answer is the HTTP status, the script (a boot script, or the waiting, refusal or error
script), and the boot event to record. `/ipxe/...`, `/provision/<mac>`, the image downloads,
the portal's preview and `prebuild_artifacts` all get their script here, so an image holds
exactly what a node chaining the URL would run; the views record the event, once
(`provisioning.http.answer_response`).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import ValidationError

from . import discovery, lookups
from .errors import BootError
from .history import Event
from .models import BootEvent, Node
from .scripts import (
    BootTarget,
    boot_token,
    render_boot_script,
    render_chain_script,
    render_error_script,
    render_refused_script,
    render_waiting_script,
    resolve_target,
    target_for_node,
)
from .validators import normalise_mac


@dataclass(frozen=True)
class Answer:
    status: int
    script: str
    event: Event | None = None
    #: What boots, when the answer is a boot script.
    target: BootTarget | None = None
    #: The reason, when the answer is an error, and the part of the request at fault: what
    #: a form shows next to which field.
    message: str = ""
    part: str = ""
    retry_after: int | None = None
    #: The public URL the answer was made for (what an image of it names).
    base_url: str = ""

    @property
    def image_script(self) -> str:
        """What an image (or a kit) for this request carries: a short script that fetches this
        answer's script from the public URL, then from each mirror (so the image follows every
        kernel switch and every server in the list). Made when asked for: scripts need none."""
        if self.target is None:
            return ""
        return render_chain_script(self.target.script_path, self.base_url)

    @property
    def boots(self) -> bool:
        return self.target is not None


def error(problem: BootError, event: Event | None = None) -> Answer:
    return Answer(
        status=problem.status,
        script=render_error_script(problem.status, problem.message),
        event=event,
        message=problem.message,
        part=problem.part,
        retry_after=problem.retry_after or (60 if problem.status == 503 else None),
    )


def for_path(
    net: str,
    farm: str | None = None,
    extra: str | None = None,
    kernel: str | None = None,
    *,
    base_url: str,
) -> Answer:
    """`/<anything>/<net>[/<farm>[/<extra>[/<kernel>]]]`: the farm's boot script, or why not."""
    try:
        target = resolve_target(net, farm, extra, kernel)
    except BootError as problem:
        return error(problem)
    token = boot_token(target)
    event = Event(
        BootEvent.Kind.SCRIPT,
        network=target.network,
        farmer_id=target.farmer_id,
        kernel=target.kernel,
        token=token,
    )
    script = render_boot_script(target, base_url, token)
    return Answer(200, script, event, target, base_url=base_url)


def for_mac(mac: str, *, base_url: str, client_ip: str | None) -> Answer:
    """`/provision/<mac>`: the node's boot script, or the waiting or refusal script.

    A MAC never seen is recorded as pending (discovery, within its limits: a refused one is
    told why and asks again later); every known node's visit is noted
    (last seen, address, boot count when it boots).
    """
    try:
        mac = normalise_mac(mac)
    except ValidationError as exc:
        return error(BootError(400, exc.messages[0]))
    node = Node.objects.for_mac(mac)
    if node is None:
        found = discovery.discover(mac, client_ip)
        waiting = render_waiting_script(mac, refused=found.refused)
        return Answer(200, waiting, Event(BootEvent.Kind.PENDING, node=found.node, mac=mac))
    answer = _node_answer(node, mac, base_url)
    discovery.mark_seen(node, client_ip, booted=answer.boots)
    return answer


def _node_answer(node: Node, mac: str, base_url: str) -> Answer:
    if node.is_pending:
        waiting = render_waiting_script(mac)
        return Answer(200, waiting, Event(BootEvent.Kind.PENDING, node=node))
    try:
        if not node.enabled:
            raise BootError(403, "it is disabled on the boot service")
        target = target_for_node(node)
    except BootError as problem:
        refused = Event(
            BootEvent.Kind.REFUSED,
            node=node,
            network=node.network,
            farmer_id=node.farm.farmer_id,
        )
        if problem.status != 403:
            return error(problem, refused)
        # Refused for now: a script that says why and asks again later, not an HTTP error.
        script = render_refused_script(mac, problem.message)
        return Answer(200, script, refused, message=problem.message)
    token = boot_token(target)
    event = Event(
        BootEvent.Kind.SCRIPT,
        network=target.network,
        farmer_id=target.farmer_id,
        node=node,
        kernel=target.kernel,
        token=token,
    )
    script = render_boot_script(target, base_url, token)
    return Answer(200, script, event, target, base_url=base_url)


def prepare() -> None:
    """Make each active network's script once, as a worker starts: the templates are compiled
    and each network's script cached, so the first node of a storm waits for nothing."""
    for network in lookups.current().networks.values():
        if network.active:
            for_path(network.slug, "1", base_url="http://127.0.0.1")
