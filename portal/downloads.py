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
    #: Which machines it suits, as the card says it.
    machines: str = "PCs (x86-64) and arm64 servers, UEFI"


#: In the order the page offers them: the most common case first.
CHOICES = (
    Choice(
        "iso", "ISO image", FORMATS["iso"].summary, True,
        "PCs (x86-64, BIOS or UEFI) and arm64 servers (UEFI)",
    ),
    Choice(
        "usb", "USB image", FORMATS["usb"].summary, True,
        "PCs (x86-64, BIOS or UEFI) and arm64 servers (UEFI)",
    ),
    Choice("uefimg", "UEFI USB image", FORMATS["uefimg"].summary, True),
    Choice(
        "uefi", "UEFI executable", FORMATS["uefi"].summary, True,
        "PCs (x86-64); arm64 servers have their own file below",
    ),
    Choice(
        "krn", "iPXE kernel for GRUB or syslinux", FORMATS["krn"].summary, True,
        "PCs (x86-64) booting with BIOS only",
    ),
    Choice(
        "pxe-kit", "PXE kit for a whole LAN", FORMATS["pxe-kit"].summary, True,
        "Every machine of one LAN that boots from its network card: PCs (BIOS or UEFI) "
        "and arm64 servers (UEFI)",
    ),
    Choice(
        "ipxe",
        "iPXE script URL",
        "For your own PXE or iPXE setup: chain this URL, no image to write",
        False,
        "Any machine iPXE runs on: the script picks the kernel for it",
    ),
)  # fmt: skip

#: The cards that also offer a file built for arm64 machines (`?arch=arm64`).
ARM64_FILES = {"uefi": "uefi-arm64"}


@dataclass(frozen=True)
class Link:
    choice: Choice
    path: str
    filename: str
    #: The same download for arm64 machines, when it is a file of its own.
    arm64_path: str = ""
    arm64_filename: str = ""


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
    cards = []
    for choice in CHOICES:
        path = target_path(choice.key, network, farmer_id, extra)
        arm64 = ARM64_FILES.get(choice.key)
        cards.append(
            Link(
                choice,
                path,
                filename(choice.key, network, farmer_id),
                arm64_path=f"{path}?arch=arm64" if arm64 else "",
                arm64_filename=filename(arm64, network, farmer_id) if arm64 else "",
            )  # fmt: skip
        )
    return cards


def unfilled_links(network: str) -> list[Link]:
    """The cards before the form is valid: no link, a file name showing its shape."""
    return [
        Link(
            choice,
            "",
            filename(choice.key, network, "FARM"),
            arm64_filename=filename(ARM64_FILES[choice.key], network, "FARM")
            if choice.key in ARM64_FILES
            else "",
        )  # fmt: skip
        for choice in CHOICES
    ]


def krn_howto(lkrn_name: str) -> str:
    """How to boot the single-file krn with GRUB or syslinux, naming the downloaded file."""
    return LKRN_HOWTO.replace("THIS_FILE", lkrn_name)
