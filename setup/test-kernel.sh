#!/usr/bin/env bash
# Make a real Linux kernel available to the boot tests and print its path.
#
#   setup/test-kernel.sh [amd64|arm64]      (default: amd64)
#
# Why a Debian kernel: like the Zero-OS kernel it is an EFI-stub image (a bzImage on amd64, an
# arm64 Image on arm64), so iPXE boots it the way it boots Zero-OS, and it prints its own
# command line on the serial console ("Command line:" on x86 with console=ttyS0, "Kernel
# command line:" on arm64 with console=ttyAMA0), which is what the tests read to prove that
# the parameters zosboot rendered reached a booted kernel.
#
# The kernels live in a cache outside the repository (8 to 30 MB each, not ours to commit):
#   ${ZOSBOOT_TEST_CACHE:-$HOME/.cache/zosboot-test}/vmlinuz          (amd64)
#   ${ZOSBOOT_TEST_CACHE:-$HOME/.cache/zosboot-test}/vmlinuz-arm64    (arm64)
# Fast and idempotent: when the file is there, nothing is downloaded.
# amd64 comes through the system's apt (root only when its lists must be refreshed). arm64 is
# not an architecture of this system: its package comes through a private apt configuration
# (the system's mirror and release, architecture arm64, lists kept in the cache), so the
# system's own sources and architectures are never changed.
set -euo pipefail

ARCH="${1:-amd64}"
CACHE="${ZOSBOOT_TEST_CACHE:-$HOME/.cache/zosboot-test}"
case "$ARCH" in
    amd64)
        META_PKG="${ZOSBOOT_TEST_KERNEL_PKG:-linux-image-cloud-amd64}"
        KERNEL="$CACHE/vmlinuz"
        ;;
    arm64)
        META_PKG="${ZOSBOOT_TEST_KERNEL_ARM64_PKG:-linux-image-cloud-arm64}"
        KERNEL="$CACHE/vmlinuz-arm64"
        ;;
    *)
        echo "usage: $0 [amd64|arm64]" >&2
        exit 2
        ;;
esac

if [[ -s "$KERNEL" ]]; then
    echo "$KERNEL"
    exit 0
fi

mkdir -p "$CACHE"

# apt as this script uses it: the system's for amd64; for arm64 a private configuration.
APT_OPTS=(-o APT::Sandbox::User=root)
if [[ "$ARCH" == arm64 ]]; then
    apt_dir="$CACHE/apt-arm64"
    mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial"
    # The system's mirror for its own release (one-line or deb822 sources), signed as there.
    codename="$(. /etc/os-release && echo "${VERSION_CODENAME:-}")"
    read -r mirror key < <(
        {
            cat /etc/apt/sources.list.d/*.sources 2>/dev/null || true
        } | awk -v want="$codename" '
            function flush() {
                if (types ~ /deb/ && (" " suites " ") ~ (" " want " ")) print uri, key
                types = ""; uri = ""; suites = ""; key = ""
            }
            /^[ \t]*$/ { flush(); next }
            /^Types:/ { types = $0 }
            /^URIs:/ { uri = $2 }
            /^Suites:/ { sub(/^Suites:[ \t]*/, ""); suites = $0 }
            /^Signed-By:/ { key = $2 }
            END { flush() }' | head -n 1
    ) || true
    if [[ -z "${mirror:-}" ]]; then
        read -r mirror < <(
            { cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null || true; } |
                awk -v want="$codename" '$1 == "deb" && $0 ~ (" " want " ") {
                    for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; exit } }'
        ) || true
    fi
    mirror="${ZOSBOOT_DEBIAN_MIRROR:-${mirror:-}}"
    if [[ -z "$mirror" || -z "$codename" ]]; then
        echo "test-kernel: no Debian mirror/release found; set ZOSBOOT_DEBIAN_MIRROR" >&2
        exit 1
    fi
    signed=""
    [[ -n "${key:-}" && -r "${key:-}" ]] && signed="signed-by=$key "
    echo "deb [${signed}arch=arm64] $mirror $codename main" >"$apt_dir/sources.list"
    APT_OPTS+=(
        -o "Dir::Etc::SourceList=$apt_dir/sources.list"
        -o "Dir::Etc::SourceParts=/dev/null"
        -o "Dir::State::Lists=$apt_dir/lists"
        -o "Dir::Cache=$apt_dir/cache"
        -o "Acquire::Languages=none"
        -o "APT::Architecture=arm64"
        -o "APT::Architectures=arm64"
    )
fi

# The meta package only depends on the versioned one (linux-image-<abi>-cloud-<arch>), which
# holds the actual vmlinuz; apt-get download does not follow dependencies, so resolve it.
resolve_image_pkg() {
    apt-cache "${APT_OPTS[@]}" depends "$META_PKG" 2>/dev/null |
        awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }'
}

pkg="$(resolve_image_pkg || true)"
if [[ -z "$pkg" ]]; then
    echo "test-kernel: $META_PKG unknown to apt, running apt-get update" >&2
    apt-get update -qq "${APT_OPTS[@]}" >&2
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
    (cd "$work" && apt-get download -qq "${APT_OPTS[@]}" "$pkg") >&2
}
if ! download; then
    # Stale lists name a version the mirror no longer has: refresh once and retry.
    echo "test-kernel: download of $pkg failed, running apt-get update and retrying" >&2
    apt-get update -qq "${APT_OPTS[@]}" >&2
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
mv -f "$work/vmlinuz.source" "$KERNEL.source"
mv -f "$work/vmlinuz" "$KERNEL"
echo "$KERNEL"
