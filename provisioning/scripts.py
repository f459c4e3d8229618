"""From a URL's parts (or a provisioned node) to the iPXE script a node runs.

Every value a client sends is validated here, before anything is rendered; everything rendered
is either validated against an allow-list or passed through `ipxe_text`, so no script can carry
an iPXE command it was not written with.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from urllib.parse import quote

from django.conf import settings
from django.core.exceptions import ValidationError
from django.template import engines

from . import lookups, tickets
from .errors import BootError
from .models import Arch, Farm, Kernel, Network, Node
from .validators import (
    KERNEL_NAME_RE,
    NETWORK_SLUG_RE,
    clean_kernel_args,
    parse_farmer_id,
)

# Arguments the service always puts first; Zero-OS reads the first runmode=/farmer_id=.
BASE_KERNEL_ARGS = "nomodeset version=v3"
PANIC_ARG = "panic=7200"

# The parts of a boot URL, as BootError.part names them.
NETWORK, FARM, EXTRA, KERNEL = "network", "farm", "extra", "kernel"

_UNSAFE_TEXT_RE = re.compile(r"[^A-Za-z0-9 .,:_+\-/()@%=]")
# What stays as it is in a path an image chains (the rest is percent-encoded): the validated
# parts use nothing else, and nothing here means anything to iPXE.
_PATH_SAFE = "_.,:=+-@"


def ipxe_text(value: object) -> str:
    """Make any text safe to place after `echo` or in a comment of an iPXE script."""
    return _UNSAFE_TEXT_RE.sub("?", str(value))[:200]


@dataclass(frozen=True)
class ArchKernel:
    """What machines of one architecture boot."""

    arch: str
    kernel: Kernel


@dataclass(frozen=True)
class BootTarget:
    """Everything that decides the script: which network, kernels, farm and arguments."""

    network: Network
    #: One per architecture that can boot (amd64 first); the script picks by `${buildarch}`.
    kernels: tuple[ArchKernel, ...]
    farmer_id: int | None = None
    extra_args: str = ""
    node: Node | None = None
    #: The farm, when the service knows it (farms need not be registered to boot).
    farm: Farm | lookups.KnownFarm | None = None
    #: The parts of the URL path that answers with this target's script, as given (what an
    #: image chains), or that path itself (a provisioned node's).
    path_parts: tuple[str, ...] = ()
    path: str = ""

    @property
    def script_path(self) -> str:
        """The URL path that answers with this target's script: what an image chains. As
        given, so a branch link named in it stays a link and the node boots the newest build
        of the branch, not today's."""
        if self.path:
            return self.path
        return "/ipxe/" + "/".join(quote(part, safe=_PATH_SAFE) for part in self.path_parts)

    @property
    def kernel(self) -> Kernel:
        """The kernel the boot history names for the script: amd64's, or the only one."""
        return self.kernels[0].kernel

    def for_arch(self, arch: str) -> ArchKernel | None:
        return next((choice for choice in self.kernels if choice.arch == arch), None)

    @property
    def farm_name(self) -> str:
        return self.farm.name if self.farm is not None else ""

    @property
    def cmdline(self) -> str:
        parts = [BASE_KERNEL_ARGS, f"runmode={self.network.slug}", PANIC_ARG]
        if self.farmer_id is not None:
            parts.append(f"farmer_id={self.farmer_id}")
        parts += [self.network.extra_args, self.extra_args]
        return " ".join(part for part in parts if part)


def find_network(slug: str, catalog: lookups.Catalog | None = None) -> Network:
    """The active network of that slug, its kernel joined in; BootError 400/404 otherwise."""
    if not NETWORK_SLUG_RE.fullmatch(slug):
        raise BootError(
            400, "network names are lower-case letters, digits and dashes", part=NETWORK
        )
    network = (catalog or lookups.current()).network(slug)
    if network is None:
        raise BootError(404, f"unknown network: {slug}", part=NETWORK)
    if not network.active:
        raise BootError(404, f"network {slug} is not active", part=NETWORK)
    return network


def find_kernel(name: str, catalog: lookups.Catalog | None = None) -> Kernel:
    """The kernel of that name, or the one the branch link of that name points at (looked
    up, never joined onto a path); BootError 400/404."""
    if not KERNEL_NAME_RE.fullmatch(name):
        raise BootError(400, "kernel names use letters, digits and . _ + -", part=KERNEL)
    kernel = (catalog or lookups.current()).kernel(name)
    if kernel is None:
        raise BootError(404, f"unknown kernel: {name}", part=KERNEL)
    return kernel


_SHA256_RE = re.compile(r"[0-9a-f]{64}")


def find_kernel_by_content(digest: str, catalog: lookups.Catalog | None = None) -> Kernel:
    """The registered kernel whose sha256 is `digest` (64 lowercase hex digits); 400/404."""
    if not _SHA256_RE.fullmatch(digest):
        raise BootError(
            400, "a content address is /kernel/sha256/ and 64 lowercase hex digits", part=KERNEL
        )
    kernel = (catalog or lookups.current()).kernel_by_content(digest)
    if kernel is None:
        raise BootError(404, f"no kernel has the sha256 {digest}", part=KERNEL)
    return kernel


def network_kernel(network: Network, arch: str = Arch.AMD64) -> Kernel:
    """The kernel the network points at for `arch` machines; 503 while it has none (a state
    ops must fix)."""
    kernel = network.kernel_for(arch)
    if kernel is None:
        what = "kernel" if arch == Arch.AMD64 else f"{arch} kernel"
        raise BootError(503, f"network {network.slug} has no {what} assigned yet", part=NETWORK)
    return kernel


def network_kernels(network: Network) -> tuple[ArchKernel, ...]:
    """Each architecture's kernel of the network, at its network URL; 503 while it has none
    for any architecture (machines of an architecture it lacks are told so by the script)."""
    kernels = tuple(
        ArchKernel(arch, kernel)
        for arch in Arch
        if (kernel := network.kernel_for(arch)) is not None
    )
    if not kernels:
        raise BootError(503, f"network {network.slug} has no kernel assigned yet", part=NETWORK)
    return kernels


def chosen_kernel(kernel: Kernel) -> tuple[ArchKernel, ...]:
    """A kernel named in the URL or a node's override: it boots the architecture it is built
    for; machines of the other one are told so by the script."""
    return (ArchKernel(kernel.arch, kernel),)


def _farm(farmer_id: int, catalog: lookups.Catalog) -> lookups.KnownFarm | None:
    farm = catalog.farm(farmer_id)
    if farm is None:
        return None
    if not farm.active:
        raise BootError(403, f"farm {farmer_id} is disabled on this boot service", part=FARM)
    return farm


def resolve_target(
    net: str, farm: str | None = None, extra: str | None = None, kernel: str | None = None
) -> BootTarget:
    """Validate the parts of `/<format>/<net>[/<farm>[/<extra>[/<kernel>]]]`.

    Raises BootError with 400 (malformed), 403 (disabled farm), 404 (unknown) or 503 (the
    network has no kernel yet).
    """
    catalog = lookups.current()
    network = find_network(net, catalog)
    farmer_id = None
    known_farm = None
    if farm is not None:
        try:
            farmer_id = parse_farmer_id(farm)
        except ValidationError as exc:
            raise BootError(400, exc.messages[0], part=FARM) from None
        known_farm = _farm(farmer_id, catalog)
    extra_args = ""
    if extra is not None:
        try:
            extra_args = clean_kernel_args(extra)
        except ValidationError as exc:
            raise BootError(400, exc.messages[0], part=EXTRA) from None
    if kernel is not None:
        kernels = chosen_kernel(find_kernel(kernel, catalog))
    else:
        kernels = network_kernels(network)
    parts = tuple(part for part in (net, farm, extra, kernel) if part is not None)
    return BootTarget(network, kernels, farmer_id, extra_args, farm=known_farm, path_parts=parts)


def target_for_node(node: Node) -> BootTarget:
    """The boot target of an approved, enabled node: its farm, network, kernel and args."""
    assert node.farm is not None and node.network is not None
    if not node.network.active:
        raise BootError(403, f"network {node.network.slug} is not active")
    if not node.farm.active:
        raise BootError(403, f"farm {node.farm.farmer_id} is disabled on this boot service")
    if node.kernel_override_id:
        kernels = chosen_kernel(node.kernel_override)
    elif node.link_override_id:
        kernels = chosen_kernel(node.link_override.kernel)
    else:
        kernels = network_kernels(node.network)
    return BootTarget(
        node.network,
        kernels,
        node.farm.farmer_id,
        node.extra_args,
        node=node,
        farm=node.farm,
        path=f"/provision/{node.mac}",
    )


def _render(template: str, context: dict) -> str:
    # A storm asks for the same few scripts over and over: render each distinct one once.
    return _render_once(template, tuple(sorted(context.items())))


@functools.lru_cache(maxsize=2048)
def _render_once(template: str, context: tuple) -> str:
    text = engines["text"].get_template(template).render(dict(context))
    # Templates are written for people; the output is what iPXE reads: one command per line.
    lines = [line.rstrip() for line in text.splitlines()]
    return "\n".join(lines).strip("\n") + "\n"


# After a failed download a node waits this long times the attempt number, plus its own 0-15 s.
RETRY_BASE_SECONDS = 5


#: What iPXE's `${buildarch}` says on the machines each architecture's kernel is for: PC builds
#: say x86_64 or i386, ARM builds arm64. Any other (riscv64, loong64, ...) has no kernel here.
BUILDARCHES = {Arch.AMD64: ("x86_64", "i386"), Arch.ARM64: ("arm64",)}


@dataclass(frozen=True)
class ScriptKernel:
    """One architecture as the boot script sees it (no kernel: its machines are refused)."""

    arch: str
    buildarches: tuple[str, ...]
    name: str = ""
    #: Where to download it, in order: its content address at the server the script came
    #: from (relative, so it follows an edge or a mirror), then at each mirror.
    urls: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        # The script's first comment names the amd64 kernel `kernel=`, as it always has.
        return "kernel" if self.arch == Arch.AMD64 else f"{self.arch}-kernel"


def kernel_sources(sha256: str, mirrors: tuple[str, ...]) -> tuple[str, ...]:
    """Where a boot script downloads the kernel of that sha256: its content address at the
    server the script came from (iPXE resolves it against the script's own URL), then at each
    mirror."""
    path = f"/kernel/sha256/{sha256}"
    return (path, *(mirror + path for mirror in mirrors))


# What differs from one request to the next for the same network and kernels: rendered once
# into a skeleton as these markers, then filled in (validated values never hold a \x01).
_FARM_ID, _FARM_NAME, _NODE_MAC, _CMDLINE, _TOKEN = (
    f"\x01{name}\x01" for name in ("f", "n", "m", "c", "t")
)
_MARKERS_RE = re.compile("(\x01[fnmct]\x01)")


def boot_token(target: BootTarget) -> str:
    """The token of one boot of `target` (provisioning.tickets): what its kernel download and
    its node's reports carry back."""
    return tickets.issue(
        target.network.pk, target.farmer_id, target.node.pk if target.node else None,
        {choice.arch: choice.kernel.pk for choice in target.kernels},
    )  # fmt: skip


def render_boot_script(target: BootTarget, base_url: str, token: str = "") -> str:
    """The boot script of `target`. Its skeleton (everything but the farm, the node and the
    command line) is made once per network, kernels and shape (a farm or not, a farm name or
    not, a node or not) and kept: a request fills in its farm, node and command line, so a farm
    asked about for the first time costs what a known one does."""
    farm_name = ipxe_text(target.farm_name)
    pieces = _boot_skeleton(
        target.network.name,
        target.network.slug,
        tuple((choice.arch, choice.kernel.name, choice.kernel.sha256) for choice in target.kernels),
        base_url.startswith("https:"),
        tuple(settings.ZOSBOOT_MIRRORS),
        settings.ZOSBOOT_NTP_SERVER,
        settings.ZOSBOOT_DOWNLOAD_IDLE_SECONDS,
        (target.farmer_id is not None, bool(farm_name), target.node is not None),
    )
    values = {
        _FARM_ID: str(target.farmer_id),
        _FARM_NAME: farm_name,
        _NODE_MAC: target.node.mac if target.node else "",
        _CMDLINE: target.cmdline,
        _TOKEN: token or boot_token(target),
    }
    return "".join(values.get(piece, piece) for piece in pieces)


@functools.lru_cache(maxsize=512)
def _boot_skeleton(
    network_name: str,
    network_slug: str,
    choices: tuple[tuple[str, str, str], ...],
    https: bool,
    mirrors: tuple[str, ...],
    ntp_server: str,
    idle_seconds: int,
    shape: tuple[bool, bool, bool],
) -> tuple[str, ...]:
    """The boot script with markers for what differs per request, cut at them. `choices` are
    (architecture, kernel name, sha256) of each kernel the script boots."""
    https = https or any(url.startswith("https:") for url in mirrors)
    kernels = []
    for arch in Arch:
        choice = next((choice for choice in choices if choice[0] == arch), None)
        if choice is None:
            kernels.append(ScriptKernel(arch.value, BUILDARCHES[arch]))
        else:
            _, name, sha256 = choice
            urls = kernel_sources(sha256, mirrors)
            kernels.append(ScriptKernel(arch.value, BUILDARCHES[arch], name, urls))
    has_farm, has_farm_name, has_node = shape
    skeleton = _render(
        "provisioning/boot.ipxe",
        {
            "mirrors": bool(mirrors),
            "network_name": ipxe_text(network_name),
            "network_slug": network_slug,
            "farmer_id": _FARM_ID if has_farm else None,
            "farm_name": _FARM_NAME if has_farm_name else "",
            "node_mac": _NODE_MAC if has_node else "",
            "kernels": tuple(kernels),
            "cmdline": _CMDLINE,
            "token": _TOKEN,
            "https": https,
            # Only HTTPS cares about the clock (certificate dates); plain HTTP does not.
            "ntp_server": ntp_server if https else "",
            "download_timeout_ms": idle_seconds * 1000,
            "retry_base_seconds": RETRY_BASE_SECONDS,
        },
    )
    return _pieces(skeleton)


@functools.lru_cache(maxsize=256)
def _pieces(skeleton: str) -> tuple[str, ...]:
    """A skeleton cut at its markers, the markers kept as pieces of their own."""
    return tuple(piece for piece in _MARKERS_RE.split(skeleton) if piece)


def render_waiting_script(mac: str, refused: str = "") -> str:
    """For a MAC waiting for approval: say so on the console and ask again later. `refused`:
    why discovery did not record it (it asks again all the same)."""
    return _render(
        "provisioning/waiting.ipxe",
        {
            "mac": mac,
            "registered": not refused,
            "refused": ipxe_text(refused),
            # Relative: asked again of the server (an edge, a mirror) that answered; in the
            # hyphen form, which iPXE releases that read any "x:" as a scheme resolve too.
            "retry_url": f"/provision/{mac.replace(':', '-')}",
            "retry_seconds": settings.ZOSBOOT_DISCOVERY_RETRY_SECONDS,
        },
    )


def render_refused_script(mac: str, reason: str) -> str:
    """For a node that must not boot now (disabled): explain, then check again much later."""
    return _render(
        "provisioning/refused.ipxe",
        {
            "mac": mac,
            "reason": ipxe_text(reason),
            "retry_url": f"/provision/{mac.replace(':', '-')}",
            "retry_seconds": settings.ZOSBOOT_REFUSED_RETRY_SECONDS,
        },
    )


def render_error_script(status: int, message: str) -> str:
    """An error body a browser, curl and an iPXE console can all read."""
    return _render("provisioning/error.ipxe", {"status": status, "message": ipxe_text(message)})


def render_chain_script(path: str, base_url: str, *, heading: str = "boot", title: str = "") -> str:
    """The script inside an image (or a PXE kit): on each network card, DHCP, then the script
    at `path` from the public URL, then from each mirror, so a farm whose first server is dead
    boots from the next. `path` may name iPXE settings (`${net0/mac}`); `title` is a line the
    console shows first (what the image is for)."""
    servers = (base_url, *(url for url in settings.ZOSBOOT_MIRRORS if url != base_url))
    return _render(
        "provisioning/chain.ipxe",
        {
            "heading": heading,
            "title": ipxe_text(title),
            "path": path,
            "servers": servers,
            "ntp_server": settings.ZOSBOOT_NTP_SERVER
            if any(server.startswith("https:") for server in servers)
            else "",
            "timeout_ms": settings.ZOSBOOT_DOWNLOAD_IDLE_SECONDS * 1000,
        },
    )


def render_provision_chain_script(base_url: str) -> str:
    """The generic script of `krn-provision`/`uefi-provision`: each NIC asks /provision/<mac>."""
    return render_chain_script("/provision/${net${zos_nic}/mac}", base_url, heading="provisioning")
