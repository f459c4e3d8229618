#!/usr/bin/env bash
# Zero-OS network boot for this LAN ({{ kit.description }}): runs dnsmasq here as a proxy-DHCP
# and TFTP server beside the router, in the foreground, until Ctrl-C.
#
#   sudo ./run.sh [INTERFACE]      (default: the interface of the default route)
#
# It first checks what it needs (root, dnsmasq, the interface's IPv4 address, UDP ports 67,
# 69 and 4011 free, the files readable by dnsmasq, no other PXE server answering on the LAN)
# and says in one line what is wrong. README.txt has the whole story.
set -euo pipefail

kit="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

fail() {
    echo "run.sh: $*" >&2
    exit 1
}

case "${1:-}" in
    -h | --help)
        echo "usage: sudo ./run.sh [INTERFACE]   (README.txt says more)"
        exit 0
        ;;
    -*) fail "usage: sudo ./run.sh [INTERFACE]" ;;
esac
[[ $# -le 1 ]] || fail "usage: sudo ./run.sh [INTERFACE]"

[[ $EUID -eq 0 ]] || fail "run it as root (sudo ./run.sh): DHCP and TFTP answer on ports below 1024"

command -v dnsmasq >/dev/null ||
    fail "dnsmasq is not installed: apt install dnsmasq-base (README.txt, way 1)"
version="$(dnsmasq --version | sed -n '1s/^Dnsmasq version \([^ ]*\).*/\1/p')"
if [[ $version =~ ^2\.92($|[^0-9]) ]]; then
    fail "dnsmasq $version sends its port-4011 answers to the wrong place (fixed in 2.93):" \
        "install another version (README.txt, dnsmasq versions)"
fi

iface="${1:-}"
if [[ -z $iface ]]; then
    iface="$(ip -4 route show default | awk '{for (i = 1; i < NF; i++) if ($i == "dev") { print $(i + 1); exit }}')"
    [[ -n $iface ]] || fail "no default route here: name the farm's LAN interface (sudo ./run.sh eth0)"
fi
[[ -e "/sys/class/net/$iface" ]] || fail "there is no network interface $iface (ip -br link lists them)"
address="$(ip -4 -o addr show dev "$iface" scope global | awk '{ split($4, a, "/"); print a[1]; exit }')"
[[ -n $address ]] || fail "$iface has no IPv4 address: the kit answers on the farm's LAN, give it one there"

busy="$(ss -H -u -l -n -p '( sport = :67 or sport = :69 or sport = :4011 )' | head -n 1)"
if [[ -n $busy ]]; then
    port="$(awk '{ print $4 }' <<<"$busy")"
    who="$(grep -o '"[^"]*",pid=[0-9]*' <<<"$busy" | head -n 1 | sed 's/^"\(.*\)",pid=\(.*\)$/\1, pid \2/' || true)"
    fail "UDP port ${port##*:} is taken${who:+ by $who}: the kit needs 67, 69 and 4011; stop that server first"
fi

[[ $kit =~ ^[A-Za-z0-9._/+-]+$ ]] ||
    fail "dnsmasq cannot use the path $kit: move the folder to a path without spaces or other signs (e.g. /opt)"
for file in autoexec.ipxe undionly.kpxe snponly.efi ipxe-arm64.efi; do
    runuser -u nobody -- test -r "$kit/tftp/$file" ||
        fail "dnsmasq sends files as the user nobody, who cannot read $kit/tftp/$file: unpack the kit as root where everyone may read it (e.g. /opt)"
done

# Another PXE server on the LAN (a second kit, a proxy-DHCP, a router handing out a boot file)
# would answer the same machines: ask the LAN the question a BIOS PXE firmware asks, once.
if command -v python3 >/dev/null; then
    other="$(python3 - "$iface" <<'PYTHON'
import os, socket, struct, sys, time

iface = sys.argv[1]
mac = bytes.fromhex(open(f"/sys/class/net/{iface}/address").read().strip().replace(":", ""))
xid = os.urandom(4)
options = (
    b"\x35\x01\x01"  # DHCPDISCOVER
    + b"\x3c\x20PXEClient:Arch:00000:UNDI:002001"
    + b"\x5d\x02\x00\x00"  # client architecture: BIOS
    + b"\x37\x04\x01\x03\x2b\x3c"
    + b"\xff"
)
packet = (
    struct.pack("!BBBB4sHH", 1, 1, 6, 0, xid, 0, 0x8000)
    + bytes(16) + mac + bytes(10) + bytes(192) + b"\x63\x82\x53\x63" + options
)
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
try:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, iface.encode())
    sock.bind(("0.0.0.0", 68))
    sock.sendto(packet, ("255.255.255.255", 67))
except OSError as exc:
    print(f"skip {exc.strerror or exc}")
    sys.exit(0)
deadline = time.monotonic() + 4
while (left := deadline - time.monotonic()) > 0:
    sock.settimeout(left)
    try:
        data, (source, _port) = sock.recvfrom(4096)
    except OSError:
        break
    if len(data) < 240 or data[0] != 2 or data[4:8] != xid:
        continue
    found, i = {}, 240
    while i + 1 < len(data) and data[i] != 255:
        if data[i] == 0:
            i += 1
            continue
        found[data[i]] = data[i + 2 : i + 2 + data[i + 1]]
        i += 2 + data[i + 1]
    server = socket.inet_ntoa(found[54]) if len(found.get(54, b"")) == 4 else source
    bootfile = (found.get(67) or data[108:236].split(b"\0", 1)[0]).decode("latin-1")
    if found.get(60, b"").startswith(b"PXEClient"):
        print(f"proxy {server}")
        break
    if bootfile:
        print(f"bootfile {server} {bootfile}")
        break
PYTHON
)"
    case "$other" in
        proxy\ *)
            fail "another PXE server already answers on $iface (${other#proxy }): machines would" \
                "get two answers; stop it, or keep it and leave the kit off" ;;
        bootfile\ *)
            read -r _ server bootfile <<<"$other"
            fail "the DHCP server $server already hands out a boot file ($bootfile): use the" \
                "router's way or the kit, not both (README.txt)" ;;
        skip\ *)
            echo "run.sh: could not look for another PXE server (${other#skip }); going on" >&2 ;;
    esac
else
    echo "run.sh: python3 is not installed, so no look for another PXE server; going on" >&2
fi

conf="$(<"$kit/dnsmasq.conf")"
conf="${conf//@INTERFACE@/"$iface"}"
conf="${conf//@KIT_ADDRESS@/"$address"}"
conf="${conf//@TFTP_ROOT@/"$kit/tftp"}"
echo "run.sh: network boot for {{ kit.description }} on $iface ($address) with dnsmasq $version; Ctrl-C stops it"
exec dnsmasq --keep-in-foreground --log-facility=- --pid-file= --conf-file=- <<<"$conf"
