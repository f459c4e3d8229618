#!/usr/bin/env bash
# Install the Debian packages zosboot needs, as root on a fresh Debian (bookworm or later).
#
#   setup/install-packages.sh run     what the service needs to serve and build boot images
#   setup/install-packages.sh test    the above plus what the test suite needs (QEMU, Chromium)
#   setup/install-packages.sh bench   the above plus wrk, the load generator of bench/
#   setup/install-packages.sh edge    an edge (setup/edge.sh): nginx and curl only
#
# Packages that ship a service (nginx) are installed without starting it: zosboot runs its own
# nginx on its own config (setup/serve.sh) and leaves the system's untouched.
set -euo pipefail

mode="${1:-run}"

# Python and the tools the image builder runs at request time.
RUN_PACKAGES=(
    python3 python3-venv python3-pip ca-certificates
    nginx acl openssh-client
    mtools dosfstools fdisk xorriso
    syslinux syslinux-common isolinux syslinux-utils
    grub-efi-amd64-bin grub-common
)
# (GRUB's arm64 EFI modules, for the arm64 `uefi` download, come from grub-efi-arm64-bin, an
# arm64-only package: setup/install-ipxe.sh unpacks them beside the iPXE binaries.)
# Boot tests in QEMU (PCs, and arm64 machines: qemu-system-aarch64 with AAVMF), the GRUB image
# that proves the documented krn stanza, the relay between the guest and the test server, the
# browser for the portal test, and PostgreSQL, whose programs the database tests start
# throwaway servers with (provisioning/tests/postgres.py), and systemd-analyze, which checks
# the units of make install offline.
# dnsmasq for the PXE kit's LAN tests (the router and the kit in network namespaces):
# dnsmasq-base is the program alone, with no service, systemd unit or /etc/default file, so
# no dnsmasq of Debian's ever starts on this machine (the "dnsmasq" package would add one).
TEST_PACKAGES=(
    qemu-system-x86 ovmf seabios socat grub-pc-bin curl
    qemu-system-arm qemu-efi-aarch64
    dnsmasq-base
    chromium
    postgresql
    systemd
)

case "$mode" in
    run) packages=("${RUN_PACKAGES[@]}") ;;
    bench) packages=("${RUN_PACKAGES[@]}" wrk) ;;
    edge) packages=(nginx ca-certificates curl) ;;
    test) packages=("${RUN_PACKAGES[@]}" "${TEST_PACKAGES[@]}") ;;
    *) echo "usage: $0 run|test|bench|edge" >&2; exit 2 ;;
esac

missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
        || missing+=("$package")
done
if [[ ${#missing[@]} -eq 0 ]]; then
    exit 0
fi

if [[ $EUID -ne 0 ]]; then
    echo "install-packages: missing ${missing[*]}; run as root (or install them)" >&2
    exit 1
fi
echo "install-packages: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# What this run puts in place only for the installation, removed when it ends.
temporary=()
trap 'rm -f "${temporary[@]}"' EXIT
# policy-rc.d answering 101 tells Debian's maintainer scripts not to start any service.
policy=/usr/sbin/policy-rc.d
if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    temporary+=("$policy")
fi
# Debian's postgresql also creates a system cluster, "main" on port 5432, started at every
# boot. The tests need no system database server (they start their own), so none is created.
if [[ " ${missing[*]} " == *" postgresql "* ]]; then
    mkdir -p /etc/postgresql-common/createcluster.d
    no_cluster=/etc/postgresql-common/createcluster.d/zosboot-install.conf
    echo "create_main_cluster = off" >"$no_cluster"
    temporary+=("$no_cluster")
fi
apt-get update -qq
apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=600 "${missing[@]}" >/dev/null
