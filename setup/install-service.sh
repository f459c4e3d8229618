#!/usr/bin/env bash
# Install zosboot as two systemd services, as root (`make install`; `make uninstall` removes
# them and leaves the data alone):
#
#   zosboot.service        gunicorn on a unix socket (reload: graceful, new workers)
#   zosboot-nginx.service  nginx on ZOSBOOT_BIND in front, on the config `make run` uses
#                          (reload: rendered again from the settings, tested, re-read)
#
# Both run as ZOSBOOT_USER (zosboot), restart on failure, start at boot, and may write only
# the directories the settings name. Settings live in /etc/zosboot/zosboot.env (made on the
# first install, never overwritten). Every step is idempotent: an upgrade is `git pull` then
# `make install` again (migrations, static files, units, restart).
#
#   setup/install-service.sh [install|uninstall]
#   ZOSBOOT_ENV_FILE, ZOSBOOT_UNIT_DIR   where the settings and the units go (default /etc/...)
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
action="${1:-install}"
env_file="${ZOSBOOT_ENV_FILE:-/etc/zosboot/zosboot.env}"
unit_dir="${ZOSBOOT_UNIT_DIR:-/etc/systemd/system}"
units=(zosboot.service zosboot-nginx.service)
python="$repo/.venv/bin/python"
log() { echo "install-service: $*" >&2; }
die() {
    log "$*"
    exit 1
}
[[ $EUID -eq 0 ]] || die "run as root (it creates the service user and writes systemd units)"
# Only a system booted with systemd can start units; elsewhere they are written, not started.
systemd_running() { [[ -d /run/systemd/system ]]; }

if [[ $action == uninstall ]]; then
    if systemd_running; then
        systemctl disable --now "${units[@]}" 2>/dev/null || true
    fi
    for unit in "${units[@]}"; do rm -f "$unit_dir/$unit"; done
    systemd_running && systemctl daemon-reload
    log "removed ${units[*]}; left alone: the data, the kernels and $env_file"
    exit 0
fi
[[ $action == install ]] || die "usage: $0 [install|uninstall]"

# --- the settings --------------------------------------------------------------------------------
if [[ ! -e $env_file ]]; then
    log "writing $env_file (edit it, then: make install)"
    mkdir -p "$(dirname "$env_file")"
    (
        umask 027
        cat >"$env_file" <<ENV
# zosboot's settings (README: Configuration), read by both units and by make install.
# Apply a change with: make install (or systemctl reload zosboot zosboot-nginx).
ZOSBOOT_DATA_DIR=$repo/data
ZOSBOOT_KERNELS_DIR=$repo/kernels
ZOSBOOT_BIND=127.0.0.1:8000
ZOSBOOT_TRUST_PROXY=1
DJANGO_ALLOWED_HOSTS=127.0.0.1,localhost
# ZOSBOOT_PUBLIC_URL=https://bootstrap.example.org
# DATABASE_URL=postgres://zosboot:secret@db/zosboot
# Several instances on one database: apply migrations once, before upgrading each (README).
# ZOSBOOT_MIGRATE=0
ENV
    )
fi
set -a
# shellcheck disable=SC1090
. "$env_file"
set +a
user="${ZOSBOOT_USER:-zosboot}"
export ZOSBOOT_FILE_DELIVERY=nginx

# --- the install, as make run prepares it --------------------------------------------------------
setup/install-ipxe.sh >/dev/null
# Service user, directories, secret key, migrations, static files, checks, prebuilt images.
ZOSBOOT_USER="$user" setup/serve.sh --prepare
chgrp "$user" "$env_file"

as_user() { runuser -u "$user" -- "$@"; }
data="$(realpath -m "$ZOSBOOT_DATA_DIR")"
listing="$(as_user "$python" manage.py service_dirs)"
dir_of() { awk -F'\t' -v s="$1" '$1 == s { print $3 }' <<<"$listing"; }
writable="$(as_user "$python" manage.py service_dirs --writable | tr '\n' ' ')"
workers="${ZOSBOOT_WORKERS:-$(($(nproc) * 2 + 1))}"
nginx="$(command -v nginx || echo /usr/sbin/nginx)"

# --- the units -----------------------------------------------------------------------------------
mkdir -p "$unit_dir"
for unit in "${units[@]}"; do
    sed -e "s|@REPO@|$repo|g" \
        -e "s|@PYTHON@|$python|g" \
        -e "s|@GUNICORN@|$repo/.venv/bin/gunicorn|g" \
        -e "s|@NGINX@|$nginx|g" \
        -e "s|@USER@|$user|g" \
        -e "s|@ENV_FILE@|$env_file|g" \
        -e "s|@WORKERS@|$workers|g" \
        -e "s|@RUN_DIR@|$(dir_of ZOSBOOT_RUN_DIR)|g" \
        -e "s|@METRICS_DIR@|$(dir_of ZOSBOOT_METRICS_DIR)|g" \
        -e "s|@LOG_DIR@|$data/log|g" \
        -e "s|@WRITABLE@|${writable% }|g" \
        "setup/systemd/$unit" >"$unit_dir/$unit.tmp"
    if grep -q '@[A-Z_]*@' "$unit_dir/$unit.tmp"; then
        die "setup/systemd/$unit: unfilled $(grep -o '@[A-Z_]*@' "$unit_dir/$unit.tmp" | head -1)"
    fi
    mv "$unit_dir/$unit.tmp" "$unit_dir/$unit"
done
log "wrote ${units[*]} to $unit_dir"

if systemd_running; then
    systemctl daemon-reload
    systemctl enable "${units[@]}"
    # An upgrade restarts on the new code; a first install starts.
    systemctl restart "${units[@]}"
    systemctl is-active --quiet "${units[@]}" ||
        die "a unit did not start: journalctl -u zosboot -u zosboot-nginx"
    log "zosboot is serving on http://${ZOSBOOT_BIND}/ (systemctl status zosboot zosboot-nginx)"
else
    log "systemd is not running on this machine: the units are written, not started"
fi
