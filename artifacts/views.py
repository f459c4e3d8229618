"""Boot image downloads: `/iso|usb|uefi|uefimg|krn|krn-tar/<net>[/<farm>[/<extra>[/<kernel>]]]`
and the static targets. The script inside is exactly what `/ipxe/...` serves for the same URL.
`?arch=arm64` asks for the arm64 build of a single EFI program (`uefi`, `uefi-provision`,
`uefi-generic`); the media with an EFI partition serve both architectures in one image.
The PXE kits, `/pxe-kit/<net>[/<farm>[/<extra>]]` and `/pxe-kit-provision`, are validated the
same way and chain `/ipxe/...` (or `/provision/<mac>`) from the farm's LAN."""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_safe

from provisioning import answers, history, logs, metrics
from provisioning.clients import public_base_url
from provisioning.delivery import Download, file_response
from provisioning.errors import BootError
from provisioning.http import answer_response, answers_nodes
from provisioning.models import BootEvent
from provisioning.scripts import render_provision_chain_script

from . import builder, cache, pxe_kit
from .formats import (
    FILENAME_SUFFIX,
    FORMATS,
    STATIC_TARGETS,
    BuildError,
    UnembeddableScript,
    download_name,
    format_for,
)

logger = logging.getLogger("zosboot.artifacts")


@require_safe
@answers_nodes
def image(
    request: HttpRequest,
    fmt: str,
    net: str,
    farm: str | None = None,
    extra: str | None = None,
    kernel: str | None = None,
) -> HttpResponse:
    """An image with the farm's boot script inside."""
    fmt, arch_label = _for_arch(request, fmt)
    answer = answers.for_path(net, farm, extra, kernel, base_url=public_base_url(request))
    logs.note(request, answer.event)
    if answer.target is None:
        return answer_response(answer)
    label = "/".join(part for part in (net, farm, extra, kernel) if part is not None)
    stem = download_name(net, answer.target.farmer_id)
    return serve(request, fmt, answer.image_script, stem, label + arch_label)


def _for_arch(request: HttpRequest, fmt: str, shown: str = "") -> tuple[str, str]:
    """The format that serves the `?arch=` asked for (default amd64), and a label suffix.
    `shown` is what the refusal calls the download (the URL's word for it)."""
    arch = request.GET.get("arch") or "amd64"
    try:
        chosen = format_for(fmt, arch)
    except ValueError as exc:
        raise BootError(400, str(exc)) from None
    if chosen is None:
        raise BootError(
            400,
            f"{shown or fmt} is for BIOS PCs, arm64 machines boot the iso, usb or uefimg "
            "image, or uefi with ?arch=arm64",
        )
    return chosen, ("" if chosen == fmt else f" ({arch})")


@require_safe
@answers_nodes
def static_image(request: HttpRequest, target: str) -> HttpResponse:
    """`/krn-generic`, `/uefi-generic` (plain iPXE), `/krn-provision`, `/uefi-provision`."""
    static = STATIC_TARGETS[target]
    fmt, arch_label = _for_arch(request, static.format, shown=target)
    script = ""
    if static.provisions:
        script = render_provision_chain_script(public_base_url(request))
    return serve(request, fmt, script, static.stem, target + arch_label)


@require_safe
@answers_nodes
def farm_pxe_kit(
    request: HttpRequest, net: str, farm: str | None = None, extra: str | None = None
) -> HttpResponse:
    """`/pxe-kit/<net>[/<farm>[/<extra>]]`: the PXE kit whose machines boot the farm's script."""
    base_url = public_base_url(request)
    answer = answers.for_path(net, farm, extra, base_url=base_url)
    logs.note(request, answer.event)
    if answer.target is None:
        return answer_response(answer)
    target = answer.target
    kit = pxe_kit.farm_kit(target, net, extra, base_url=base_url)
    label = "/".join(part for part in (net, farm, extra) if part is not None)
    event = history.Event(
        BootEvent.Kind.PXE_KIT, network=target.network, farmer_id=target.farmer_id
    )
    stem = download_name(net, target.farmer_id)
    return _serve_kit(request, kit, stem, label, event, metrics_network=target.network.slug)


@require_safe
@answers_nodes
def provisioning_pxe_kit(request: HttpRequest) -> HttpResponse:
    """`/pxe-kit-provision`: the PXE kit whose machines chain `/provision/<their MAC>`."""
    kit = pxe_kit.provisioning_kit(base_url=public_base_url(request))
    event = history.Event(BootEvent.Kind.PXE_KIT)
    return _serve_kit(request, kit, "zos-provision", "pxe-kit-provision", event, "-")


def _serve_kit(
    request: HttpRequest,
    kit: pxe_kit.Kit,
    stem: str,
    label: str,
    event: history.Event,
    metrics_network: str,
) -> HttpResponse:
    def sent() -> None:
        history.record(request, event)
        metrics.PXE_KITS.labels(metrics_network).inc()

    return serve(request, pxe_kit.FORMAT, kit.payload(), stem, label, on_send=sent)


@answers_nodes
def serve(
    request: HttpRequest,
    fmt: str,
    script: str | bytes,
    stem: str,
    label: str,
    on_send: Callable[[], None] | None = None,
) -> HttpResponse:
    """Build or fetch the image, then send it with its checksum headers. `on_send` runs when
    the bytes of a GET leave (not for HEAD or 304)."""
    try:
        result = builder.get_or_build(fmt, script, label=label)
    except builder.ImageUnavailable as exc:
        raise BootError(503, f"{exc}, try again later", retry_after=exc.retry_after) from None
    except UnembeddableScript as exc:
        # The request asked for something this format cannot carry (e.g. `initrd=` in the
        # extra arguments of the single-file krn): the farmer's to change, said as such.
        raise BootError(400, str(exc)) from None
    except (BuildError, OSError) as exc:
        # The tool's own words (a banner, a path) are for the operator's log, not a console.
        logger.error("building %s for %s failed: %s", fmt, label, exc)
        raise BootError(503, "the image could not be built, the operators have been told") from None
    artifact = result.artifact
    metrics.IMAGES_SERVED.labels(fmt, "miss" if result.built else "hit").inc()
    download = Download(
        store="artifacts",
        relative=str(artifact.path.relative_to(cache.root())),
        size=artifact.size,
        sha256=artifact.sha256,
        filename=f"{stem}{FILENAME_SUFFIX[fmt]}",
        content_type=FORMATS[fmt].content_type,
    )
    return file_response(
        request,
        download,
        on_send=on_send,
        headers={"X-Zosboot-Cache": "miss" if result.built else "hit"},
    )
