#!/usr/bin/env bash
# Make a real Linux kernel available to the boot tests and print its path.
#
# Why a Debian kernel: like the Zero-OS kernel it is a bzImage with an EFI stub, so iPXE
# boots it the same way under BIOS and UEFI, and with console=ttyS0 it prints its own
# "Command line:" on the serial port, which is what the tests read to prove that the
# parameters zosboot rendered reached a booted kernel.
#
# The kernel lives in a cache outside the repository (it is ~8 MB and not ours to commit):
#   ${ZOSBOOT_TEST_CACHE:-$HOME/.cache/zosboot-test}/vmlinuz
# Fast and idempotent: when the file is there, nothing is downloaded.
# Needs root only when the apt lists must be refreshed (apt-get update).
set -euo pipefail

META_PKG="${ZOSBOOT_TEST_KERNEL_PKG:-linux-image-cloud-amd64}"
CACHE="${ZOSBOOT_TEST_CACHE:-$HOME/.cache/zosboot-test}"
KERNEL="$CACHE/vmlinuz"

if [[ -s "$KERNEL" ]]; then
    echo "$KERNEL"
    exit 0
fi

mkdir -p "$CACHE"

# The meta package only depends on the versioned one (linux-image-<abi>-cloud-amd64), which
# holds the actual vmlinuz; apt-get download does not follow dependencies, so resolve it.
resolve_image_pkg() {
    apt-cache depends "$META_PKG" 2>/dev/null |
        awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }'
}

pkg="$(resolve_image_pkg || true)"
if [[ -z "$pkg" ]]; then
    echo "test-kernel: $META_PKG unknown to apt, running apt-get update" >&2
    apt-get update -qq >&2
    pkg="$(resolve_image_pkg || true)"
fi
if [[ -z "$pkg" ]]; then
    echo "test-kernel: cannot resolve $META_PKG to a linux-image package" >&2
    exit 1
fi

work="$(mktemp -d "$CACHE/.download.XXXXXX")"
trap 'rm -rf "$work"' EXIT

# APT::Sandbox::User=root: the download dir belongs to whoever runs this, not to _apt.
download() {
    (cd "$work" && apt-get download -qq -o APT::Sandbox::User=root "$pkg") >&2
}
if ! download; then
    # Stale lists name a version the mirror no longer has: refresh once and retry.
    echo "test-kernel: download of $pkg failed, running apt-get update and retrying" >&2
    apt-get update -qq >&2
    pkg="$(resolve_image_pkg)"
    download
fi

deb="$(find "$work" -maxdepth 1 -name 'linux-image-*.deb' -print -quit)"
dpkg-deb -x "$deb" "$work/root"
vmlinuz="$(find "$work/root/boot" -maxdepth 1 -name 'vmlinuz-*' -print -quit)"
if [[ -z "$vmlinuz" ]]; then
    echo "test-kernel: no /boot/vmlinuz-* in $(basename "$deb")" >&2
    exit 1
fi

# Atomic publish, so a concurrent or interrupted run never leaves a half-written kernel.
cp "$vmlinuz" "$work/vmlinuz"
basename "$deb" >"$work/vmlinuz.source"
mv -f "$work/vmlinuz.source" "$CACHE/vmlinuz.source"
mv -f "$work/vmlinuz" "$KERNEL"
echo "$KERNEL"
