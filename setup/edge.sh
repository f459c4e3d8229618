#!/usr/bin/env bash
# A zosboot edge: nginx alone in front of the origin, keeping kernels by content address and
# the last good answer of every script, so a site's nodes boot when the origin is unreachable
# and a release crosses the site's uplink once. Called by `make edge`; Ctrl-C or SIGTERM stops.
#
#   ZOSBOOT_EDGE_ORIGIN        the origin's base URL (required), e.g. https://bootstrap.grid.tf
#   ZOSBOOT_EDGE_BIND          where the edge listens (default 127.0.0.1:8001)
#   ZOSBOOT_EDGE_DIR           cache, logs and pid (default data/edge)
#   ZOSBOOT_EDGE_CACHE_BYTES   size of the kernel and image cache (default 20 GiB)
#   ZOSBOOT_EDGE_STALE_HOURS   how long the last good answer is served when the origin fails (72)
#
#   setup/edge.sh --warm       pull the kernels the origin's networks boot now through the
#                              running edge (after a release, before the nodes ask)
#   setup/edge.sh --config     print the nginx site config and exit
#
# No database and no Python: the config is setup/nginx/edge-site.conf with the values above
# (`manage.py edge_config` on the origin prints the same for an nginx ops run themselves).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
log() { echo "edge: $*" >&2; }
die() {
    log "$*"
    exit 1
}

origin="${ZOSBOOT_EDGE_ORIGIN:-}"
bind="${ZOSBOOT_EDGE_BIND:-127.0.0.1:8001}"
edge_dir="$(realpath -m "${ZOSBOOT_EDGE_DIR:-$repo/data/edge}")"
cache_bytes="${ZOSBOOT_EDGE_CACHE_BYTES:-$((20 * 1024 * 1024 * 1024))}"
stale_hours="${ZOSBOOT_EDGE_STALE_HOURS:-72}"

[[ -n $origin ]] || die "set ZOSBOOT_EDGE_ORIGIN to the origin's base URL, e.g. https://bootstrap.grid.tf"
origin="${origin%/}"
[[ $origin =~ ^(https?)://([A-Za-z0-9.-]+|\[[0-9A-Fa-f:]+\])(:[0-9]+)?$ ]] ||
    die "ZOSBOOT_EDGE_ORIGIN=$origin is not a base URL (http[s]://host[:port], nothing after)"
origin_host="${BASH_REMATCH[2]}${BASH_REMATCH[3]}"
host_only="${BASH_REMATCH[2]}"
[[ $bind =~ ^[][A-Za-z0-9.:-]+$ ]] || die "ZOSBOOT_EDGE_BIND=$bind is not an address:port"
[[ $cache_bytes =~ ^[0-9]+$ ]] || die "ZOSBOOT_EDGE_CACHE_BYTES=$cache_bytes is not a number of bytes"
[[ $stale_hours =~ ^[0-9]+$ && $stale_hours -gt 0 ]] ||
    die "ZOSBOOT_EDGE_STALE_HOURS=$stale_hours is not a number of hours"
[[ $edge_dir =~ ^[A-Za-z0-9_./-]+$ ]] || die "ZOSBOOT_EDGE_DIR=$edge_dir: use a path without spaces"

# A host name is resolved when nodes ask, not once at start: an edge must start (and keep
# serving what it has) while the origin's name does not resolve.
resolver=""
if [[ ! $host_only =~ ^[0-9.]+$ && ! $host_only =~ ^\[ ]]; then
    nameservers="$(awk '$1 == "nameserver" { printf "%s ", ($2 ~ /:/ ? "[" $2 "]" : $2) }' /etc/resolv.conf 2>/dev/null || true)"
    [[ -n $nameservers ]] || die "the origin is a host name and /etc/resolv.conf names no nameserver"
    resolver="resolver ${nameservers}valid=60s;"
fi

render() {
    sed -e "s|@ORIGIN@|$origin|g" -e "s|@ORIGIN_HOST@|$origin_host|g" -e "s|@BIND@|$bind|g" \
        -e "s|@EDGE_DIR@|$edge_dir|g" -e "s|@CACHE_BYTES@|$cache_bytes|g" \
        -e "s|@STALE_HOURS@|$stale_hours|g" -e "s|@RESOLVER@|$resolver|g" \
        "$repo/setup/nginx/edge-site.conf"
}

case "${1:-}" in
    --config)
        render
        exit 0
        ;;
    --warm)
        command -v curl >/dev/null || die "curl is not installed (apt-get install curl)"
        list="$(curl -fsS --max-time 30 "$origin/kernels/current.txt")" ||
            die "could not read $origin/kernels/current.txt"
        [[ -n $list ]] || { log "the origin's networks boot no kernel yet"; exit 0; }
        failed=0
        while read -r sha256 size name users; do
            [[ $sha256 =~ ^[0-9a-f]{64}$ ]] || continue
            log "pulling $name ($size bytes, for $users) into the edge"
            if ! curl -fsS --max-time 3600 -o /dev/null -w '' \
                "http://$bind/kernel/sha256/$sha256"; then
                log "could not pull $name through the edge at $bind"
                failed=1
            fi
        done <<<"$list"
        exit "$failed"
        ;;
    "") ;;
    *) die "usage: $0 [--warm|--config]" ;;
esac

command -v nginx >/dev/null || die "nginx is not installed (make edge installs it)"
mkdir -p "$edge_dir/cache" "$edge_dir/log" "$edge_dir/run/nginx-tmp"
rm -f "$edge_dir/run/no-origin.sock"  # must never exist: the stale copies answer alone
user_line=""
if [[ $EUID -eq 0 ]]; then
    user="${ZOSBOOT_USER:-zosboot}"
    if ! id -u "$user" >/dev/null 2>&1; then
        log "creating the system user $user"
        useradd --system --user-group --no-create-home --home-dir /nonexistent \
            --shell /usr/sbin/nologin "$user"
    fi
    chown -R "$user:" "$edge_dir"
    user_line="user $user;"
fi
site="$edge_dir/run/edge-site.conf"
conf="$edge_dir/run/nginx.conf"
render >"$site"
sed -e "s|@USER@|$user_line|g" -e "s|@RUN_DIR@|$edge_dir/run|g" -e "s|@LOG_DIR@|$edge_dir/log|g" \
    -e "s|@SITE@|$site|g" "$repo/setup/nginx/nginx.conf" >"$conf"
nginx -t -q -e "$edge_dir/log/nginx-error.log" -c "$conf" -p "$edge_dir/run" ||
    die "nginx refused the generated config $conf"
log "serving on http://$bind/ for $origin (cache $cache_bytes bytes in $edge_dir/cache; Ctrl-C stops)"
log "warm it after a release: ZOSBOOT_EDGE_ORIGIN=$origin ZOSBOOT_EDGE_BIND=$bind $0 --warm"
exec nginx -e "$edge_dir/log/nginx-error.log" -c "$conf" -p "$edge_dir/run"
