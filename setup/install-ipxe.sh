#!/usr/bin/env bash
# Install the prebuilt iPXE binaries that zosboot wraps into boot images, and the GRUB modules
# the single-file arm64 EFI program is assembled from.
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
#
# GRUB for arm64 (TARGET_DIR/grub/arm64-efi): the `uefi` download for arm64 machines is GRUB
# with a memdisk, assembled by the system's grub-mkimage (grub-common) from arm64 modules. Debian
# ships those only in grub-efi-arm64-bin, an arm64 package that does not install on amd64, so
# its .deb is fetched (the system's release, the version of the installed grub-common, so tool
# and modules match; apt checks it against the release's signed index) and only the modules
# are unpacked. The amd64 modules come from grub-efi-amd64-bin, installed as usual.
set -euo pipefail

IPXE_VERSION="1.21.1+git20250501.dad20602+dfsg-1"
IPXE_DEB="ipxe_${IPXE_VERSION}_all.deb"
IPXE_SHA256="eeaca79dbde0fb86c102bf1d362c6f6a67ed0ddab38b3dd12e1b332339f5dd99"
SUITE="trixie"
# What the image builder uses. ipxe-amd64.efi is the full EFI build (native drivers + SNP,
# HTTPS); snponly.efi only drives the NIC through the firmware, which some boards need.
# ipxe-arm64.efi is the same full build for arm64 (UEFI) machines: BOOTAA64.EFI on the media.
BINARIES=(ipxe-amd64.efi ipxe-arm64.efi ipxe.lkrn snponly.efi undionly.kpxe)
STAMP_NAME="VERSION"
GRUB_ARM64_PACKAGE="grub-efi-arm64-bin"

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

# Download one package into $dest with apt's private configuration: suite $2, architecture $3
# (empty: the system's), package spec $4 ("name=version"). Only the system's mirror is asked.
fetch_deb() {
    local dest="$1" suite="$2" arch="$3" spec="$4" mirror key work
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
    local options=()
    [[ -n "$key" ]] && options+=("signed-by=$key")
    [[ -n "$arch" ]] && options+=("arch=$arch")
    if [[ ${#options[@]} -gt 0 ]]; then
        echo "deb [${options[*]}] $mirror $suite main" >"$work/sources.list"
    else
        echo "deb $mirror $suite main" >"$work/sources.list"
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
    # Another architecture than the system's: apt's own setting, for this call only.
    [[ -n "$arch" ]] && apt_opts+=(-o "APT::Architecture=$arch" -o "APT::Architectures=$arch")
    log "fetching $spec${arch:+ ($arch)} from $mirror ($suite)"
    apt-get -qq "${apt_opts[@]}" update >&2 || die "apt-get update of $suite failed"
    (cd "$work/dl" && apt-get -qq "${apt_opts[@]}" download "$spec") >&2 ||
        die "apt-get download $spec failed (gone from $suite? update the pin)"
    local got
    got="$(find "$work/dl" -maxdepth 1 -name '*.deb' -print -quit)"
    [[ -n "$got" ]] || die "apt-get download $spec produced no .deb"
    mkdir -p "$(dirname "$dest")"
    mv -f "$got" "$dest.part"
    mv -f "$dest.part" "$dest"
    rm -rf "$work"
    trap - EXIT
}

install_ipxe() {
    local deb="$download_cache/$IPXE_DEB" name
    if [[ -f "$deb" ]] && ! sha_ok "$deb"; then
        log "cached $deb does not match the pin; fetching again"
        rm -f "$deb"
    fi
    if [[ ! -f "$deb" ]]; then
        fetch_deb "$deb" "$SUITE" "" "ipxe=$IPXE_VERSION"
        sha_ok "$deb" || {
            rm -f "$deb"
            die "$IPXE_DEB does not match the pinned sha256 $IPXE_SHA256; refusing it"
        }
    fi
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
    rm -rf "$stage"
    trap - EXIT
    log "installed iPXE $IPXE_VERSION into $target"
}

install_grub_arm64() {
    local version codename grub_dir="$target/grub/arm64-efi" deb stage
    # Without grub-mkimage there is nothing to assemble the modules with (install-packages.sh
    # installs grub-common); the arm64 `uefi` download then reports what is missing.
    version="$(dpkg-query -W -f='${Version}' grub-common 2>/dev/null)" || {
        log "grub-common is not installed: skipping GRUB's arm64 modules"
        return 0
    }
    [[ "$(cat "$grub_dir/VERSION" 2>/dev/null)" == "$version" && -s "$grub_dir/moddep.lst" ]] &&
        return 0
    codename="$(. /etc/os-release && echo "${VERSION_CODENAME:-}")"
    [[ -n "$codename" ]] || die "cannot tell this system's Debian release (/etc/os-release)"
    deb="$download_cache/${GRUB_ARM64_PACKAGE}_${version//:/%3a}_arm64.deb"
    [[ -s "$deb" ]] || fetch_deb "$deb" "$codename" arm64 "$GRUB_ARM64_PACKAGE=$version"
    mkdir -p "$target/grub"
    stage="$(mktemp -d "$target/grub/.install.XXXXXX")"
    # shellcheck disable=SC2064  # expand now: $stage is local
    trap "rm -rf '$stage'" EXIT
    dpkg-deb -x "$deb" "$stage/root"
    local modules="$stage/root/usr/lib/grub/arm64-efi"
    [[ -s "$modules/moddep.lst" && -s "$modules/kernel.img" ]] ||
        die "$(basename "$deb") has no usr/lib/grub/arm64-efi modules"
    # What grub-mkimage reads: the kernel, the modules and their lists (not the prebuilt
    # monolithic images, which are never used here).
    mkdir "$stage/arm64-efi"
    cp "$modules"/kernel.img "$modules"/*.mod "$modules"/*.lst "$stage/arm64-efi/"
    echo "$version" >"$stage/arm64-efi/VERSION"
    chmod -R a+rX "$stage/arm64-efi"
    # The whole directory lands by rename; a reader sees the old one or the new one.
    [[ -e "$grub_dir" ]] && mv "$grub_dir" "$stage/old"
    mv "$stage/arm64-efi" "$grub_dir"
    rm -rf "$stage"
    trap - EXIT
    log "installed GRUB $version arm64-efi modules into $grub_dir"
}

already_installed || install_ipxe
install_grub_arm64
echo "$target"
