"""The PXE kit (``/pxe-kit/...``): what one machine on a farm's LAN needs to boot every other
machine of that LAN from its network card, beside the router's own DHCP.

A ``.tar.gz`` with one top folder::

    <name>/README.txt            the three ways to use it
    <name>/dnsmasq.conf          proxy-DHCP and TFTP for dnsmasq
    <name>/run.sh                starts dnsmasq with it on this machine
    <name>/IPXE-LICENSE.txt      iPXE's licence, which travels with its binaries
    <name>/tftp/autoexec.ipxe    brings the network up and chains the farm's script
    <name>/tftp/undionly.kpxe    iPXE for BIOS PXE
    <name>/tftp/snponly.efi      iPXE for x86-64 UEFI PXE
    <name>/tftp/ipxe-arm64.efi   iPXE for arm64 UEFI PXE

The texts are rendered by the service for one farm (``artifacts.pxe_kit``) and handed to the
builder as the JSON :func:`payload`, so the cache key covers every byte of them; the binaries
are the pinned iPXE files, which the toolchain fingerprint covers. The archive is the same for
the same input on any machine: sorted entries, fixed times, owners and modes, gzip without a
name or time. Files are world-readable: dnsmasq serves TFTP as ``nobody``.

Plain Python, no Django.
"""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from pathlib import Path

from .krn import tar_member
from .parts import LICENSE_NAME, media_builder
from .toolchain import Toolchain, read

#: The texts every kit carries, by their path in the kit.
TEXTS = ("README.txt", "dnsmasq.conf", "run.sh", "tftp/autoexec.ipxe")
EXECUTABLES = frozenset({"run.sh"})
#: The binaries under tftp/, by their name there: what each firmware kind is sent.
BINARIES = {
    "undionly.kpxe": "ipxe_undionly",
    "snponly.efi": "ipxe_snponly",
    "ipxe-arm64.efi": "ipxe_efi_arm64",
}
NEEDS = (*BINARIES.values(), "ipxe_license")


def payload(name: str, texts: dict[str, str]) -> bytes:
    """What the builder is given for one kit: its folder name and its texts, as JSON."""
    if sorted(texts) != sorted(TEXTS):
        raise ValueError(f"a PXE kit has exactly these texts: {', '.join(TEXTS)}")
    if not name or "/" in name or name.startswith("."):
        raise ValueError(f"not a folder name: {name!r}")
    return json.dumps({"name": name, "texts": texts}, sort_keys=True).encode()


def read_payload(data: bytes) -> tuple[str, dict[str, str]]:
    try:
        kit = json.loads(data)
        name, texts = kit["name"], kit["texts"]
    except (ValueError, KeyError, TypeError):
        raise ValueError("a PXE kit is built from pxe_kit.payload(...), not a script") from None
    payload(name, texts)  # the same checks
    return name, texts


def members(data: bytes, tc: Toolchain) -> list[tuple[str, bytes, int]]:
    """(path, bytes, mode) of every file of the kit, sorted by path."""
    name, texts = read_payload(data)
    files = [
        (path, text.encode(), 0o755 if path in EXECUTABLES else 0o644)
        for path, text in texts.items()
    ]
    files += [(f"tftp/{file}", read(getattr(tc, need)), 0o644) for file, need in BINARIES.items()]
    files.append((LICENSE_NAME, read(tc.ipxe_license), 0o644))
    return sorted((f"{name}/{path}", content, mode) for path, content, mode in files)


def _build_pxe_kit(data: bytes, dest: Path, workdir: Path, tc: Toolchain) -> None:
    files = members(data, tc)
    folders = sorted({path.rsplit("/", 1)[0] for path, _content, _mode in files})
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        entries = [(folder, None, 0o755) for folder in folders] + files
        for path, content, mode in sorted(entries, key=lambda entry: entry[0]):
            if content is None:
                tar.addfile(tar_member(path, 0, directory=True))
                continue
            info = tar_member(path, len(content))
            info.mode = mode
            tar.addfile(info, io.BytesIO(content))
    with open(dest, "wb") as out:
        # No file name and time 0 in the gzip header: the same tar gives the same bytes.
        with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0, compresslevel=9) as gz:
            gz.write(raw.getvalue())


build_pxe_kit = media_builder(_build_pxe_kit, embeds_script=False)
