"""What nodes hit: boot scripts, provisioning by MAC, kernel files."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_safe

from . import answers, history, logs, metrics, reports, tickets
from .clients import client_ip, public_base_url
from .delivery import Download, file_response, redirect_response
from .errors import BootError
from .http import answer_response, answers_nodes
from .models import Arch, BootEvent, Kernel, Network
from .scripts import find_kernel, find_kernel_by_content, find_network, network_kernel
from .validators import SIGNATURE_SUFFIX, normalise_mac


def _answered(request: HttpRequest, answer: answers.Answer) -> HttpResponse:
    """The one place a script answer is recorded: in the boot history and on the log line."""
    logs.note(request, answer.event)
    if answer.event is not None:
        history.record(request, answer.event)
    return answer_response(answer)


@require_safe
@answers_nodes
def ipxe_script(
    request: HttpRequest,
    net: str,
    farm: str | None = None,
    extra: str | None = None,
    kernel: str | None = None,
) -> HttpResponse:
    """`/ipxe/<net>[/<farm>[/<extra>[/<kernel>]]]`: the boot script for a farm (never cached:
    `script_response`)."""
    answer = answers.for_path(net, farm, extra, kernel, base_url=public_base_url(request))
    network = answer.target.network.slug if answer.target else "-"  # never a made-up name
    metrics.SCRIPTS.labels(network, "served" if answer.boots else str(answer.status)).inc()
    return _answered(request, answer)


@require_safe
@answers_nodes
def provision(request: HttpRequest, mac: str) -> HttpResponse:
    """`/provision/<mac>`: the script for a node provisioned (or discovered) by MAC address."""
    answer = answers.for_mac(mac, base_url=public_base_url(request), client_ip=client_ip(request))
    metrics.PROVISION_ANSWERS.labels(_provision_outcome(answer)).inc()
    return _answered(request, answer)


@require_safe
@answers_nodes
def boot_report(request: HttpRequest, token: str, milestone: str) -> HttpResponse:
    """`/boot-report/<token>/<milestone>`: what a node says of its boot (provisioning.reports)."""
    return reports.receive(request, token, milestone)


def _provision_outcome(answer: answers.Answer) -> str:
    if answer.boots:
        return "booted"
    if answer.status != 200 or answer.event is None:
        return "error"
    return "pending" if answer.event.kind == BootEvent.Kind.PENDING else "refused"


@require_safe
@answers_nodes
def kernel_by_name(request: HttpRequest, name: str) -> HttpResponse:
    """`/kernel/<name>`: a kernel file, or the build a branch link points at, by name;
    `/kernel/<name>.sig`: its release signature, for anyone to check a download with."""
    if name.endswith(SIGNATURE_SUFFIX):  # no kernel or link may be named so
        return _signature(find_kernel(name.removesuffix(SIGNATURE_SUFFIX)))
    return _kernel_response(request, find_kernel(name), network=None, asked_as=name)


@require_safe
@answers_nodes
def kernel_by_content(request: HttpRequest, digest: str) -> HttpResponse:
    """`/kernel/sha256/<hex>`: the registered kernel with these bytes (any name, any
    architecture). The same bytes forever, so any cache may keep it: what boot scripts
    download, and what edges and CDNs hold."""
    return _kernel_response(request, find_kernel_by_content(digest), network=None)


def _signature(kernel: Kernel) -> HttpResponse:
    if not kernel.signature:
        raise BootError(404, f"{kernel.name} carries no release signature")
    response = HttpResponse(kernel.signature, content_type="text/plain; charset=us-ascii")
    response["Content-Disposition"] = f'attachment; filename="{kernel.name}.sig"'
    if kernel.signer:
        response["X-Zosboot-Signer"] = kernel.signer
    return response


@require_safe
@answers_nodes
def kernel_for_network(request: HttpRequest, net: str, arch: str = Arch.AMD64) -> HttpResponse:
    """`/kernel/net/<net>.efi` (amd64, the field's URL) and `/kernel/net/<arch>/<net>.efi`:
    the kernel the network currently points at for that architecture."""
    if arch not in Arch.values:
        raise BootError(404, f"unknown architecture: {arch} (amd64 or arm64)")
    network = find_network(net)
    return _kernel_response(request, network_kernel(network, arch), network=network)


def _downloading_mac(request: HttpRequest) -> str:
    """The MAC the boot script adds to its kernel URL (`?mac=`), which ties the download to
    the machine in the history; anything else there is ignored, never refused."""
    try:
        return normalise_mac(request.GET.get("mac", ""))
    except ValidationError:
        return ""


def _boot_token(request: HttpRequest) -> str:
    """The boot the download belongs to (`?boot=`, the token of the script that named it):
    kept when it is one of this service's, dropped otherwise, never refused."""
    token = request.GET.get("boot", "")
    try:
        tickets.read(token)
    except BootError:
        return ""
    return token


#: What an edge (setup/edge.sh) adds to the requests it passes on: it keeps kernels by their
#: content address, so a kernel asked for by another name is pointed there (and a content
#: address is sent, not redirected to a CDN: the edge is filling its cache).
EDGE_HEADER = "X-Zosboot-Edge"
#: A content address names the same bytes forever.
IMMUTABLE = "public, max-age=31536000, immutable"


def _kernel_response(
    request: HttpRequest, kernel: Kernel, network: Network | None, asked_as: str = ""
) -> HttpResponse:
    content_addressed = request.path == kernel.content_path
    download = Download(
        store="kernels",
        relative=kernel.file.name,
        size=kernel.size,
        sha256=kernel.sha256,
        filename=asked_as or kernel.name,
        cache_control=IMMUTABLE if content_addressed else "",
    )
    event = history.Event(
        BootEvent.Kind.KERNEL, network=network, kernel=kernel, mac=_downloading_mac(request),
        token=_boot_token(request),
    )  # fmt: skip
    logs.note(request, event)

    def sent() -> None:
        history.record(request, event)
        metrics.KERNEL_DOWNLOADS.labels(kernel.name).inc()
        metrics.KERNEL_BYTES.labels(kernel.name).inc(kernel.size)

    # Which build a link (or a network) served, whatever name it was asked by.
    headers = {"X-Zosboot-Kernel": kernel.name}
    location = _elsewhere(request, kernel, content_addressed)
    if location is not None:
        return redirect_response(request, download, location, on_send=sent, headers=headers)
    return file_response(request, download, on_send=sent, headers=headers)


def _elsewhere(request: HttpRequest, kernel: Kernel, content_addressed: bool) -> str | None:
    """Where the bytes come from instead of this answer: the content address on the same
    server for an edge, the CDN (ZOSBOOT_KERNEL_REDIRECT) for everyone else."""
    if request.headers.get(EDGE_HEADER):
        return None if content_addressed else kernel.content_path
    if settings.ZOSBOOT_KERNEL_REDIRECT:
        return settings.ZOSBOOT_KERNEL_REDIRECT + kernel.content_path
    return None
