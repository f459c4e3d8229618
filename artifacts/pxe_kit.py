"""What goes into a PXE kit: the texts for one farm (or for provisioning by MAC), rendered
here from the boot service's URLs; the `pxe-kit` format (`formats/pxe_kit.py`) packs them with
the iPXE binaries into the archive.

The kit's URLs are the service's public URL, then each of `ZOSBOOT_MIRRORS`: the TFTP-root
`autoexec.ipxe` tries them in that order. iPXE asking the kit's proxy-DHCP directly gets the
first one (a DHCP answer carries one file name), or, when that is longer than the 127 bytes a
DHCP answer holds, `autoexec.ipxe` over TFTP instead, which does the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from django.conf import settings
from django.template import engines

from provisioning.scripts import BootTarget, render_chain_script

from .formats import FILENAME_SUFFIX, download_name
from .formats.parts import AUTOEXEC
from .formats.pxe_kit import payload

FORMAT = "pxe-kit"
#: The `file` field of a DHCP answer, where proxy-DHCP puts the boot file name (with its NUL).
MAX_BOOT_FILE = 127
#: iPXE fills in the card it booted from (`netX`: the last one opened) before fetching.
PROVISION_MAC = "${netX/mac:hexhyp}"


@dataclass(frozen=True)
class Kit:
    """One kit, before it is built: its name, what it boots and from where."""

    name: str
    description: str
    #: The service's URL, then its mirrors', of what each machine chains.
    urls: tuple[str, ...]
    #: The URLs end in `/provision/` and each card adds its MAC.
    by_mac: bool
    #: Where the kit itself is downloaded, for its texts to name.
    kit_url: str
    #: The service's public URL, and the path every card asks it (then each mirror) for.
    base_url: str = ""
    chain_path: str = ""

    @property
    def filename(self) -> str:
        return self.name.removesuffix("-pxe-kit") + FILENAME_SUFFIX[FORMAT]

    @property
    def ipxe_boot(self) -> str:
        """What dnsmasq gives iPXE itself as its boot file."""
        url = self.urls[0] + (PROVISION_MAC if self.by_mac else "")
        return url if len(url.encode()) <= MAX_BOOT_FILE else AUTOEXEC

    def payload(self) -> bytes:
        """What the builder packs: the folder name and every text of the kit."""
        heading = "provisioning" if self.by_mac else "boot"
        texts = {
            "tftp/autoexec.ipxe": render_chain_script(
                self.chain_path, self.base_url, heading=heading, title=self.description
            ),
        }
        context = {"kit": self}
        for name in ("README.txt", "dnsmasq.conf", "run.sh"):
            texts[name] = _render(f"artifacts/pxe-kit/{name}", context)
        return payload(self.name, texts)


def _render(template: str, context: dict) -> str:
    return engines["text"].get_template(template).render(context)


def bases(base_url: str) -> tuple[str, ...]:
    """The service's public URL, then its mirrors (each without a trailing slash)."""
    return (base_url, *(url for url in settings.ZOSBOOT_MIRRORS if url != base_url))


def farm_kit(target: BootTarget, net: str, extra: str | None, *, base_url: str) -> Kit:
    """The kit for `/pxe-kit/<net>[/<farm>[/<extra>]]`: machines chain `/ipxe/...` of the same
    parts. `extra` is the segment as the URL gave it (already validated by `target`)."""
    parts = [net]
    description = f"network {target.network.slug}"
    if target.farmer_id is not None:
        parts.append(str(target.farmer_id))
        description += f", farm {target.farmer_id}"
    if extra is not None:
        # Commas and spaces encoded too: the URL is a field of a dnsmasq.conf line.
        parts.append(quote(extra, safe="=:@+"))
        description += f", kernel arguments {target.extra_args}"
    path = "/".join(parts)
    return Kit(
        name=download_name(net, target.farmer_id) + "-pxe-kit",
        description=description,
        urls=tuple(f"{base}/ipxe/{path}" for base in bases(base_url)),
        by_mac=False,
        kit_url=f"{base_url}/pxe-kit/{path}",
        base_url=base_url,
        chain_path=target.script_path,
    )


def provisioning_kit(*, base_url: str) -> Kit:
    """The kit for `/pxe-kit-provision`: each machine chains `/provision/<its MAC>`."""
    return Kit(
        name="zos-provision-pxe-kit",
        description="each machine boots what the boot service assigns to its MAC address",
        urls=tuple(f"{base}/provision/" for base in bases(base_url)),
        by_mac=True,
        kit_url=f"{base_url}/pxe-kit-provision",
        base_url=base_url,
        chain_path="/provision/${net${zos_nic}/mac}",
    )
