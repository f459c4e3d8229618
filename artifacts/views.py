"""Boot image downloads: `/iso|usb|uefi|uefimg|krn/<net>[/<farm>[/<extra>[/<kernel>]]]` and the
static targets. The script inside is exactly what `/ipxe/...` serves for the same URL."""

from __future__ import annotations

import logging

from django.http import FileResponse, HttpRequest, HttpResponse, HttpResponseNotModified
from django.utils.cache import patch_cache_control
from django.views.decorators.http import require_safe

from provisioning.http import boot_script_for, error_response, etag_matches, public_base_url
from provisioning.scripts import BootError, render_provision_chain_script

from . import builder
from .formats import FORMATS, BuildError

logger = logging.getLogger("zosboot.artifacts")

# How each format is named when downloaded: zos-prod-1234.iso, zos-prod-1234-usb.img, ...
FILENAME_SUFFIX = {
    "iso": ".iso",
    "usb": "-usb.img",
    "uefimg": "-uefi.img",
    "uefi": ".efi",
    "krn": "-ipxe.tar",
    "lkrn-plain": ".lkrn",
    "efi-plain": ".efi",
}
# The static targets: which format, and whether the script chains /provision/<mac>.
STATIC_TARGETS = {
    "krn-generic": ("lkrn-plain", False, "ipxe-generic"),
    "uefi-generic": ("efi-plain", False, "ipxe-generic"),
    "krn-provision": ("krn", True, "zos-provision"),
    "uefi-provision": ("uefi", True, "zos-provision"),
}


def download_name(net: str, farmer_id: int | None) -> str:
    return f"zos-{net}-{farmer_id}" if farmer_id is not None else f"zos-{net}"


@require_safe
def image(
    request: HttpRequest,
    fmt: str,
    net: str,
    farm: str | None = None,
    extra: str | None = None,
    kernel: str | None = None,
) -> HttpResponse:
    """An image with the farm's boot script inside."""
    try:
        target, script = boot_script_for(request, net, farm, extra, kernel)
    except BootError as error:
        return error_response(error)
    label = "/".join(part for part in (net, farm, extra, kernel) if part is not None)
    return serve(request, fmt, script, download_name(net, target.farmer_id), label)


@require_safe
def static_image(request: HttpRequest, target: str) -> HttpResponse:
    """`/krn-generic`, `/uefi-generic` (plain iPXE), `/krn-provision`, `/uefi-provision`."""
    fmt, provisions, stem = STATIC_TARGETS[target]
    script = ""
    if provisions:
        try:
            script = render_provision_chain_script(public_base_url(request))
        except BootError as error:
            return error_response(error)
    return serve(request, fmt, script, stem, target)


def serve(request: HttpRequest, fmt: str, script: str, stem: str, label: str) -> HttpResponse:
    """Build or fetch the image, then stream it with its checksum headers."""
    try:
        result = builder.get_or_build(fmt, script, label=label)
        handle = result.artifact.path.open("rb")
    except builder.Busy as exc:
        response = error_response(BootError(503, f"{exc}; try again in a few seconds"))
        response["Retry-After"] = "5"
        return response
    except (BuildError, OSError) as exc:
        logger.error("building %s for %s failed: %s", fmt, label, exc)
        return error_response(BootError(503, f"the image could not be built: {exc}"))
    artifact = result.artifact
    etag = f'"{artifact.sha256}"'
    if etag_matches(request, etag):
        handle.close()
        response = HttpResponseNotModified()
    elif request.method == "HEAD":
        handle.close()
        response = HttpResponse(content_type=FORMATS[fmt].content_type)
        response["Content-Length"] = str(artifact.size)
    else:
        response = FileResponse(handle, content_type=FORMATS[fmt].content_type)
    response["Content-Disposition"] = f'attachment; filename="{stem}{FILENAME_SUFFIX[fmt]}"'
    response["ETag"] = etag
    response["X-Checksum-Sha256"] = artifact.sha256
    response["X-Zosboot-Cache"] = "miss" if result.built else "hit"
    patch_cache_control(response, no_cache=True)
    return response
