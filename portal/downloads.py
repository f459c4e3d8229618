"""The download links the portal offers for one network + farm + extra arguments.

Every link is a URL of the README's contract (`/iso/prod/1234/...`), reversed from the
artifacts and provisioning URL patterns, so the portal cannot drift from what the service
actually serves. File names come from the artifacts format registry, which the image views use too.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.urls import reverse

from artifacts.formats import FILENAME_SUFFIX, FORMATS, LKRN_HOWTO, download_name
from provisioning.validators import SLASH_ESCAPE, normalise_kernel_args


@dataclass(frozen=True)
class Choice:
    """One way to boot: a format the farmer can download, or the script URL to chain."""

    key: str
    title: str
    summary: str
    #: A boot image (True) or the plain script URL for an existing PXE setup (False).
    is_image: bool


#: In the order the page offers them: the most common case first.
CHOICES = (
    Choice("iso", "ISO image", FORMATS["iso"].summary, True),
    Choice("usb", "USB image", FORMATS["usb"].summary, True),
    Choice("uefimg", "UEFI USB image", FORMATS["uefimg"].summary, True),
    Choice("uefi", "UEFI executable", FORMATS["uefi"].summary, True),
    Choice("krn", "iPXE kernel for GRUB or syslinux", FORMATS["krn"].summary, True),
    Choice(
        "ipxe",
        "iPXE script URL",
        "For your own PXE or iPXE setup: chain this URL, no image to write",
        False,
    ),
)


@dataclass(frozen=True)
class Link:
    choice: Choice
    path: str
    filename: str


def extra_segment(extra: str) -> str:
    """The `<extra>` URL segment (before percent-encoding) for cleaned kernel arguments."""
    return extra.replace("/", SLASH_ESCAPE)


def survives_url(extra: str) -> bool:
    """Whether the server reads the segment back as these very arguments.

    `/` is written `___`, so an underscore right next to a `/` (`a_/b` -> `a____b`) would
    come back as something else (`a/_b`); such arguments cannot be put in a link.
    """
    return normalise_kernel_args(extra_segment(extra)) == extra


def target_path(prefix: str, network: str, farmer_id: int, extra: str = "") -> str:
    """`/<prefix>/<net>/<farm>[/<extra>]`, percent-encoded (a space becomes %20)."""
    # URL names follow provisioning.paths: "iso" for one segment, "iso-3" for three.
    namespace = "provisioning" if prefix == "ipxe" else "artifacts"
    if extra:
        kwargs = {"net": network, "farm": str(farmer_id), "extra": extra_segment(extra)}
        return reverse(f"{namespace}:{prefix}-3", kwargs=kwargs)
    return reverse(f"{namespace}:{prefix}-2", kwargs={"net": network, "farm": str(farmer_id)})


def filename(key: str, network: str, farmer_id: int | str | None) -> str:
    """What the download is saved as, e.g. zos-prod-1234.iso (the script has no file).

    A stand-in such as "FARM" for `farmer_id` names the file before the form is valid.
    """
    if key not in FILENAME_SUFFIX:
        return ""
    return download_name(network, farmer_id) + FILENAME_SUFFIX[key]


def links(network: str, farmer_id: int, extra: str = "") -> list[Link]:
    return [
        Link(
            choice,
            target_path(choice.key, network, farmer_id, extra),
            filename(choice.key, network, farmer_id),
        )
        for choice in CHOICES
    ]


def unfilled_links(network: str) -> list[Link]:
    """The cards before the form is valid: no link, a file name showing its shape."""
    return [Link(choice, "", filename(choice.key, network, "FARM")) for choice in CHOICES]


def krn_howto(lkrn_name: str) -> str:
    """How to boot the single-file krn with GRUB or syslinux, naming the downloaded file."""
    return LKRN_HOWTO.replace("THIS_FILE", lkrn_name)
