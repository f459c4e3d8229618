"""A PXE client on the wire, in the standard library: the DHCP discover a firmware (or iPXE)
sends, the boot-server request on port 4011, and TFTP reads.

What a farm's machines see of the LAN is what the kit must get right, so the tests ask the
questions those machines ask, byte for byte as RFC 2131, RFC 4578 and the PXE specification
put them: vendor class ``PXEClient:Arch:0000N:UNDI:...`` and option 93 for the firmware kinds
(0 BIOS, 7 and 9 x86-64 UEFI, 11 arm64 UEFI), and iPXE's user class (option 77 ``iPXE``) and
option 175 for iPXE itself.

The probe runs inside a network namespace (``ip netns exec NS python -m
artifacts.tests.pxe_probe ...``), on an interface with an address of its own, and prints JSON:

    boot IFACE MAC ARCH CLIENT_IP [--ipxe] [--listen S] [--offers N]
        every offer heard in S seconds (or the first N), and the proxy's answer on 4011
    tftp SERVER FILE                                      size and sha256 of the file

No Django: it is run as a program in another namespace.
"""

from __future__ import annotations

import argparse
import hashlib
import ipaddress
import json
import os
import socket
import struct
import sys
import time
from dataclasses import asdict, dataclass, field

DHCP_SERVER_PORT = 67
DHCP_CLIENT_PORT = 68
PXE_BOOT_SERVER_PORT = 4011
TFTP_PORT = 69
MAGIC_COOKIE = b"\x63\x82\x53\x63"

DISCOVER, OFFER, REQUEST, ACK = 1, 2, 3, 5

#: Options a PXE client names in its parameter request list (the PXE specification's set).
PXE_REQUESTED = bytes([1, 3, 6, 43, 54, 60, 66, 67, 97, 128, 129, 130, 131, 132, 133, 134, 135])


@dataclass
class Reply:
    """One DHCP answer as a client sees it."""

    source: str
    message_type: int
    server_id: str
    yiaddr: str
    siaddr: str
    file: str
    sname: str
    vendor_class: str
    #: Every option, number -> hex bytes, for anything a test wants to look at.
    options: dict[str, str] = field(default_factory=dict)

    @property
    def is_proxy(self) -> bool:
        """A proxy-DHCP answer: PXE information, no address."""
        return self.yiaddr == "0.0.0.0" and self.vendor_class.startswith("PXEClient")

    @property
    def menu(self) -> list[tuple[int, str]]:
        """The PXE boot menu (option 43, sub-option 9): (boot item type, text) each."""
        found = []
        menu = _suboptions(bytes.fromhex(self.options.get("43", ""))).get(9, b"")
        while len(menu) >= 3:
            kind, length = struct.unpack("!HB", menu[:3])
            found.append((kind, menu[3 : 3 + length].decode("latin-1")))
            menu = menu[3 + length :]
        return found


def _suboptions(data: bytes) -> dict[int, bytes]:
    """Options in DHCP's code-length-value layout (the packet's, or an encapsulated set)."""
    found: dict[int, bytes] = {}
    i = 0
    while i < len(data) and data[i] != 0xFF:
        if data[i] == 0:
            i += 1
            continue
        code, length = data[i], data[i + 1]
        found[code] = found.get(code, b"") + data[i + 2 : i + 2 + length]
        i += 2 + length
    return found


def _opt(code: int, value: bytes) -> bytes:
    return bytes([code, len(value)]) + value


def _options(message_type: int, arch: int, ipxe: bool, mac: bytes, item: int | None) -> bytes:
    opt = _opt

    undi = "002001" if ipxe else "003016"
    guid = hashlib.sha256(mac).digest()[:16]
    parts = [
        opt(53, bytes([message_type])),
        opt(55, PXE_REQUESTED),
        opt(57, struct.pack("!H", 1464)),
        opt(60, f"PXEClient:Arch:{arch:05d}:UNDI:{undi}".encode()),
        opt(93, struct.pack("!H", arch)),
        opt(94, bytes([1, 3, 16])),
        opt(97, b"\x00" + guid),
    ]
    if ipxe:
        # What iPXE adds to every DHCP request: its user class, and its feature list under
        # option 175 (here: 0x13 HTTP, 0x17 scripts).
        parts.append(opt(77, b"iPXE"))
        parts.append(opt(175, bytes([0x13, 1, 1, 0x17, 1, 1])))
    if item is not None:
        # The boot server request names the menu item chosen (PXE_BOOT_ITEM, layer 0).
        parts.append(opt(43, _opt(71, struct.pack("!HH", item, 0)) + b"\xff"))
    return b"".join(parts) + b"\xff"


def packet(
    message_type: int,
    xid: int,
    mac: str,
    arch: int,
    ipxe: bool,
    ciaddr: str,
    item: int | None = None,
) -> bytes:
    hw = bytes.fromhex(mac.replace(":", ""))
    header = struct.pack(
        "!BBBBIHH4s4s4s4s16s64s128s",
        1, 1, 6, 0, xid, 0, 0x8000,
        socket.inet_aton(ciaddr), bytes(4), bytes(4), bytes(4),
        hw, b"", b"",
    )  # fmt: skip
    return header + MAGIC_COOKIE + _options(message_type, arch, ipxe, hw, item)


def parse(data: bytes, source: str) -> tuple[int, Reply] | None:
    if len(data) < 240 or data[0] != 2 or data[236:240] != MAGIC_COOKIE:
        return None
    xid = struct.unpack("!I", data[4:8])[0]
    options = _suboptions(data[240:])

    def text(raw: bytes) -> str:
        return raw.split(b"\x00", 1)[0].decode("latin-1")

    return xid, Reply(
        source=source,
        message_type=options.get(53, b"\x00")[0],
        server_id=socket.inet_ntoa(options[54]) if len(options.get(54, b"")) == 4 else "",
        yiaddr=socket.inet_ntoa(data[16:20]),
        siaddr=socket.inet_ntoa(data[20:24]),
        sname=text(data[44:108]),
        file=text(data[108:236]),
        vendor_class=options.get(60, b"").decode("latin-1"),
        options={str(code): value.hex() for code, value in sorted(options.items())},
    )


def _socket(iface: str) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, iface.encode())
    sock.bind(("0.0.0.0", DHCP_CLIENT_PORT))
    return sock


def _collect(sock: socket.socket, xid: int, seconds: float, enough: int) -> list[Reply]:
    """The answers to `xid` heard within `seconds`, or the first `enough` of them."""
    replies: list[Reply] = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            data, (address, _port) = sock.recvfrom(4096)
        except TimeoutError:
            break
        parsed = parse(data, address)
        if parsed is not None and parsed[0] == xid:
            replies.append(parsed[1])
            if len(replies) >= enough:
                break
    return replies


def discover(
    iface: str, mac: str, arch: int, ipxe: bool, listen: float = 3.0, enough: int = 99
) -> list[Reply]:
    """Broadcast a DHCPDISCOVER as this firmware kind would; every offer heard in `listen` s
    (or the first `enough`)."""
    xid = int.from_bytes(os.urandom(4), "big")
    with _socket(iface) as sock:
        sock.sendto(
            packet(DISCOVER, xid, mac, arch, ipxe, "0.0.0.0"),
            ("255.255.255.255", DHCP_SERVER_PORT),
        )
        return _collect(sock, xid, listen, enough)


def request(
    iface: str,
    mac: str,
    arch: int,
    ipxe: bool,
    server: str,
    client_ip: str,
    item: int | None = None,
    wait: float = 3.0,
) -> Reply | None:
    """Ask a boot server on port 4011 for the boot file, as a PXE client does after a proxy
    offer (naming the menu item it chose, if the offer had a menu); its answer, or None."""
    xid = int.from_bytes(os.urandom(4), "big")
    with _socket(iface) as sock:
        sock.sendto(
            packet(REQUEST, xid, mac, arch, ipxe, client_ip, item),
            (server, PXE_BOOT_SERVER_PORT),
        )
        replies = _collect(sock, xid, wait, enough=1)
    return replies[0] if replies else None


def boot(
    iface: str, mac: str, arch: int, ipxe: bool, client_ip: str, listen: float, enough: int = 99
) -> dict:
    """What a PXE client goes through: the offers to its discover, then (when one of them is
    a proxy offer) the proxy's answer on port 4011, asked for the first item of its menu."""
    offers = discover(iface, mac, arch, ipxe, listen, enough)
    proxies = [offer for offer in offers if offer.is_proxy]
    answer = None
    if proxies:
        proxy = proxies[0]
        item = proxy.menu[0][0] if proxy.menu else None
        answer = request(iface, mac, arch, ipxe, proxy.server_id, client_ip, item)
    return {
        "offers": [asdict(offer) | {"menu": offer.menu} for offer in offers],
        "answer": asdict(answer) | {"menu": answer.menu} if answer else None,
    }


class TftpError(Exception):
    pass


def tftp_get(server: str, filename: str, timeout: float = 5.0) -> bytes:
    """Read a file over TFTP (RFC 1350, octet mode, 512-byte blocks)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(timeout)
    with sock:
        sock.sendto(b"\x00\x01" + filename.encode() + b"\x00octet\x00", (server, TFTP_PORT))
        data = bytearray()
        expected = 1
        while True:
            try:
                chunk, peer = sock.recvfrom(4 + 512)
            except TimeoutError:
                raise TftpError(f"no answer for {filename} (block {expected})") from None
            opcode, number = struct.unpack("!HH", chunk[:4])
            if opcode == 5:
                message = chunk[4:].split(b"\x00", 1)[0].decode("latin-1")
                raise TftpError(f"{filename}: error {number}: {message}")
            if opcode != 3:
                raise TftpError(f"{filename}: unexpected opcode {opcode}")
            if number == expected:
                data += chunk[4:]
                expected = (expected + 1) & 0xFFFF
            sock.sendto(struct.pack("!HH", 4, number), peer)
            if number == (expected - 1) & 0xFFFF and len(chunk) - 4 < 512:
                return bytes(data)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pxe_probe", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    sub = commands.add_parser("boot")
    sub.add_argument("iface")
    sub.add_argument("mac")
    sub.add_argument("arch", type=int)
    sub.add_argument("client_ip", type=ipaddress.IPv4Address)
    sub.add_argument("--ipxe", action="store_true")
    sub.add_argument("--listen", type=float, default=3.0)
    sub.add_argument("--offers", type=int, default=99, help="stop after this many offers")
    sub = commands.add_parser("tftp")
    sub.add_argument("server", type=ipaddress.IPv4Address)
    sub.add_argument("file")
    args = parser.parse_args(argv)
    if args.command == "boot":
        found = boot(
            args.iface, args.mac, args.arch, args.ipxe, str(args.client_ip), args.listen,
            args.offers,
        )  # fmt: skip
        print(json.dumps(found))
        return 0
    try:
        data = tftp_get(str(args.server), args.file)
    except TftpError as exc:
        print(json.dumps({"error": str(exc)}))
        return 0
    print(json.dumps({"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
