"""What nodes hit: boot scripts, provisioning by MAC, kernel files."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from . import discovery, history
from .delivery import Download, file_response
from .errors import BootError
from .http import (
    answers_nodes,
    boot_script_for,
    client_ip,
    error_response,
    public_base_url,
    script_response,
)
from .models import BootEvent, Kernel, Network, Node
from .scripts import (
    find_kernel,
    find_network,
    network_kernel,
    render_boot_script,
    render_refused_script,
    render_waiting_script,
    target_for_node,
)
from .validators import normalise_mac


@never_cache
@require_safe
@answers_nodes
def ipxe_script(
    request: HttpRequest,
    net: str,
    farm: str | None = None,
    extra: str | None = None,
    kernel: str | None = None,
) -> HttpResponse:
    """`/ipxe/<net>[/<farm>[/<extra>[/<kernel>]]]`: the boot script for a farm."""
    target, script = boot_script_for(request, net, farm, extra, kernel)
    history.record(
        request,
        BootEvent.Kind.SCRIPT,
        network=target.network,
        farmer_id=target.farmer_id,
        kernel=target.kernel,
    )
    return script_response(script)


@never_cache
@require_safe
def provision(request: HttpRequest, mac: str) -> HttpResponse:
    """`/provision/<mac>`: the script for a node provisioned (or discovered) by MAC address."""
    try:
        mac = normalise_mac(mac)
        base_url = public_base_url(request)
    except ValidationError as exc:
        return error_response(BootError(400, exc.messages[0]))
    except BootError as error:
        return error_response(error)
    ip = client_ip(request)
    node = Node.objects.for_mac(mac)
    if node is None:
        node = discovery.discover(mac, ip)
        history.record(request, BootEvent.Kind.PENDING, node=node, mac=mac)
        return script_response(render_waiting_script(mac, base_url, registered=node is not None))
    if node.is_pending:
        discovery.mark_seen(node, ip, booted=False)
        history.record(request, BootEvent.Kind.PENDING, node=node)
        return script_response(render_waiting_script(mac, base_url, registered=True))
    if not node.enabled:
        discovery.mark_seen(node, ip, booted=False)
        history.record(
            request,
            BootEvent.Kind.REFUSED,
            node=node,
            network=node.network,
            farmer_id=node.farm.farmer_id,
        )
        return script_response(
            render_refused_script(mac, "it is disabled on the boot service", base_url)
        )
    try:
        target = target_for_node(node)
    except BootError as error:
        discovery.mark_seen(node, ip, booted=False)
        history.record(
            request,
            BootEvent.Kind.REFUSED,
            node=node,
            network=node.network,
            farmer_id=node.farm.farmer_id,
        )
        if error.status == 403:
            return script_response(render_refused_script(mac, error.message, base_url))
        return error_response(error)
    discovery.mark_seen(node, ip, booted=True)
    history.record(
        request,
        BootEvent.Kind.SCRIPT,
        network=target.network,
        farmer_id=target.farmer_id,
        node=node,
        kernel=target.kernel,
    )
    return script_response(render_boot_script(target, base_url))


@require_safe
@answers_nodes
def kernel_by_name(request: HttpRequest, name: str) -> HttpResponse:
    """`/kernel/<name>`: a kernel file, looked up by name in the database."""
    return _kernel_response(request, find_kernel(name), network=None)


@require_safe
@answers_nodes
def kernel_for_network(request: HttpRequest, net: str) -> HttpResponse:
    """`/kernel/net/<net>.efi`: the kernel the network currently points at."""
    network = find_network(net)
    return _kernel_response(request, network_kernel(network), network=network)


def _kernel_response(request: HttpRequest, kernel: Kernel, network: Network | None):
    download = Download(
        store="kernels",
        relative=kernel.file.name,
        size=kernel.size,
        sha256=kernel.sha256,
        filename=kernel.name,
    )
    return file_response(
        request,
        download,
        on_send=lambda: history.record(
            request, BootEvent.Kind.KERNEL, network=network, kernel=kernel
        ),
    )


def error_400(request: HttpRequest, exception=None) -> HttpResponse:
    return error_response(BootError(400, "bad request"))


def error_403(request: HttpRequest, exception=None) -> HttpResponse:
    return error_response(BootError(403, "forbidden"))


def error_404(request: HttpRequest, exception=None) -> HttpResponse:
    return error_response(BootError(404, "no such page; see the service's home page for the URLs"))


def error_500(request: HttpRequest) -> HttpResponse:
    return error_response(BootError(500, "internal error, the operators have been told"))
