#!/usr/bin/env bash
# Install the prebuilt iPXE binaries that zosboot wraps into boot images.
#
#   setup/install-ipxe.sh [TARGET_DIR]     (default: ${ZOSBOOT_IPXE_DIR:-<repo>/data/ipxe})
#
# Why this package: zosboot never compiles iPXE (see DESIGN.md, "iPXE"). Debian trixie's
# arch-independent `ipxe` package is the first Debian build whose EFI binary runs
# autoexec.ipxe and has HTTPS, and being `Architecture: all` it unpacks fine on bookworm.
# It is pinned by version AND sha256: the binaries end up in every image a farmer
# downloads, and a changed binary must be a deliberate change here, not a mirror update.
#
# Why a private apt configuration: trixie must not leak into the system's package sources,
# so apt is pointed at a scratch sources.list, lists dir and cache, and the system's own
# configuration is only read (to reuse its mirror and keyring).
#
# Idempotent: when TARGET_DIR already holds this version, nothing is downloaded. The .deb
# is also kept in a download cache (checked against the pin), so installing into a fresh
# directory (tests do) needs no network after the first time.
set -euo pipefail

IPXE_VERSION="1.21.1+git20250501.dad20602+dfsg-1"
IPXE_DEB="ipxe_${IPXE_VERSION}_all.deb"
IPXE_SHA256="eeaca79dbde0fb86c102bf1d362c6f6a67ed0ddab38b3dd12e1b332339f5dd99"
SUITE="trixie"
# What the image builder uses. ipxe-amd64.efi is the full EFI build (native drivers + SNP,
# HTTPS); snponly.efi only drives the NIC through the firmware, which some boards need.
BINARIES=(ipxe-amd64.efi ipxe.lkrn snponly.efi undionly.kpxe)
STAMP_NAME="VERSION"

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
target="${1:-${ZOSBOOT_IPXE_DIR:-$repo/data/ipxe}}"
download_cache="${ZOSBOOT_DOWNLOAD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/zosboot}"
stamp_line="$IPXE_VERSION $IPXE_SHA256"

log() { echo "install-ipxe: $*" >&2; }
die() {
    log "$*"
    exit 1
}

already_installed() {
    [[ -f "$target/$STAMP_NAME" ]] || return 1
    [[ "$(cat "$target/$STAMP_NAME")" == "$stamp_line" ]] || return 1
    local name
    for name in "${BINARIES[@]}"; do
        [[ -s "$target/$name" ]] || return 1
    done
}

if already_installed; then
    echo "$target"
    exit 0
fi

for tool in apt-get dpkg-deb sha256sum; do
    command -v "$tool" >/dev/null || die "$tool not found (this script needs a Debian system)"
done

sha_ok() { [[ "$(sha256sum "$1" | cut -d' ' -f1)" == "$IPXE_SHA256" ]]; }

# The mirror the system already uses for its own release (apt may only reach that one),
# from either sources format. ZOSBOOT_DEBIAN_MIRROR overrides; "URI signed-by-or-empty".
system_mirror() {
    local codename
    codename="$(. /etc/os-release && echo "${VERSION_CODENAME:-}")"
    # Missing files are normal (either format may be absent): cat must not stop the search.
    {
        # One-line format: deb [options] URI suite components...
        { cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null || true; } |
            awk -v want="$codename" '
                $1 != "deb" { next }
                {
                    opts = ""; i = 2
                    if ($2 ~ /^\[/) {
                        while (i <= NF && $i !~ /\]$/) { opts = opts " " $i; i++ }
                        opts = opts " " $i; i++
                    }
                    if ($(i + 1) != want) next
                    key = ""
                    if (match(opts, /signed-by=[^] ]+/))
                        key = substr(opts, RSTART + 10, RLENGTH - 10)
                    print $i, key
                }'
        # deb822 format: stanzas separated by blank lines.
        { cat /etc/apt/sources.list.d/*.sources 2>/dev/null || true; } |
            awk -v want="$codename" '
                function flush() {
                    if (types ~ /(^| )deb( |$)/ && enabled != "no" && (" " suites " ") ~ (" " want " "))
                        print uri, key
                    types = ""; uri = ""; suites = ""; key = ""; enabled = ""
                }
                /^[ \t]*$/ { flush(); next }
                /^Types:/ { sub(/^Types:[ \t]*/, ""); types = $0 }
                /^URIs:/ { uri = $2 }
                /^Suites:/ { sub(/^Suites:[ \t]*/, ""); suites = $0 }
                /^Signed-By:/ { key = $2 }
                /^Enabled:/ { enabled = tolower($2) }
                END { flush() }'
    } | head -n 1
}

fetch_deb() {
    local dest="$1" mirror key work
    if [[ -n "${ZOSBOOT_DEBIAN_MIRROR:-}" ]]; then
        mirror="$ZOSBOOT_DEBIAN_MIRROR"
        key=""
    else
        read -r mirror key < <(system_mirror) || true
    fi
    [[ -n "${mirror:-}" ]] ||
        die "no Debian mirror found in /etc/apt/sources.list(.d); set ZOSBOOT_DEBIAN_MIRROR"
    [[ -z "$key" || -r "$key" ]] || key=""

    work="$(mktemp -d)"
    # shellcheck disable=SC2064  # expand now: $work is local
    trap "rm -rf '$work'" EXIT
    mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$work/dl"
    if [[ -n "$key" ]]; then
        echo "deb [signed-by=$key] $mirror $SUITE main" >"$work/sources.list"
    else
        echo "deb $mirror $SUITE main" >"$work/sources.list"
    fi
    local apt_opts=(
        -o "Dir::Etc::SourceList=$work/sources.list"
        -o "Dir::Etc::SourceParts=/dev/null"
        -o "Dir::State::Lists=$work/lists"
        -o "Dir::Cache=$work/cache"
        -o "Acquire::Languages=none"
        # The scratch dirs belong to whoever runs this, not to apt's _apt user.
        -o "APT::Sandbox::User=$(id -un)"
    )
    log "fetching $IPXE_DEB from $mirror ($SUITE)"
    apt-get -qq "${apt_opts[@]}" update >&2 || die "apt-get update of $SUITE failed"
    (cd "$work/dl" && apt-get -qq "${apt_opts[@]}" download "ipxe=$IPXE_VERSION") >&2 ||
        die "apt-get download ipxe=$IPXE_VERSION failed (gone from $SUITE? update the pin)"
    [[ -f "$work/dl/$IPXE_DEB" ]] || die "apt-get download produced no $IPXE_DEB"
    sha_ok "$work/dl/$IPXE_DEB" ||
        die "$IPXE_DEB does not match the pinned sha256 $IPXE_SHA256; refusing it"
    mkdir -p "$(dirname "$dest")"
    mv -f "$work/dl/$IPXE_DEB" "$dest.part"
    mv -f "$dest.part" "$dest"
    rm -rf "$work"
    trap - EXIT
}

deb="$download_cache/$IPXE_DEB"
if [[ -f "$deb" ]] && ! sha_ok "$deb"; then
    log "cached $deb does not match the pin; fetching again"
    rm -f "$deb"
fi
[[ -f "$deb" ]] || fetch_deb "$deb"
# Checked again right before use: the cache may be shared.
sha_ok "$deb" || die "$deb does not match the pinned sha256 $IPXE_SHA256; refusing it"

mkdir -p "$target"
stage="$(mktemp -d "$target/.install.XXXXXX")"
trap 'rm -rf "$stage"' EXIT
dpkg-deb -x "$deb" "$stage/root"
for name in "${BINARIES[@]}"; do
    [[ -s "$stage/root/usr/lib/ipxe/$name" ]] || die "$IPXE_DEB has no usr/lib/ipxe/$name"
done
# Each file lands by rename (the stage is inside the target), so readers never see half a file.
publish() {
    install -m 0644 "$1" "$stage/new"
    mv -f "$stage/new" "$target/$2"
}
# Remove the stamp first, so an interrupted install is never taken for a complete one.
rm -f "$target/$STAMP_NAME"
for name in "${BINARIES[@]}"; do
    publish "$stage/root/usr/lib/ipxe/$name" "$name"
done
# The images zosboot hands out contain these GPL binaries: keep Debian's copyright with them.
publish "$stage/root/usr/share/doc/ipxe/copyright" copyright
echo "$stamp_line" >"$stage/stamp"
publish "$stage/stamp" "$STAMP_NAME"
log "installed iPXE $IPXE_VERSION into $target"
echo "$target"
