#!/usr/bin/env bash
# Prepare the embedded default install (SQLite, bundled defaults) and serve it: nginx on
# ZOSBOOT_BIND in front of gunicorn, nginx sending kernel and image bytes itself.
# Called by `make run`; every step is idempotent. Ctrl-C or SIGTERM stops both servers.
#
#   ZOSBOOT_FILE_DELIVERY=nginx   (default) nginx on ZOSBOOT_BIND, gunicorn on a unix socket
#   ZOSBOOT_FILE_DELIVERY=django  gunicorn alone on ZOSBOOT_BIND, streams capped and shed
#   ZOSBOOT_MIGRATE=0             only check that the database has every migration (several
#                                 instances: migrations are applied once, before they start)
#
# Started as root, the servers' workers run as the unprivileged user ZOSBOOT_USER (default
# zosboot, created if missing), which owns the data directory and the kernel store.
set -euo pipefail

prepare_only=0
[[ ${1:-} == --prepare ]] && prepare_only=1  # everything but the servers
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
python="$repo/.venv/bin/python"
log() { echo "serve: $*" >&2; }
die() {
    log "$*"
    exit 1
}

data="$(realpath -m "${ZOSBOOT_DATA_DIR:-$repo/data}")"
kernels="$(realpath -m "${ZOSBOOT_KERNELS_DIR:-$repo/kernels}")"
run_dir="$(realpath -m "${ZOSBOOT_RUN_DIR:-$data/run}")"
bind="${ZOSBOOT_BIND:-127.0.0.1:8000}"
delivery="${ZOSBOOT_FILE_DELIVERY:-nginx}"
threads="${ZOSBOOT_THREADS:-8}"
workers="${ZOSBOOT_WORKERS:-$(($(nproc) * 2 + 1))}"
export ZOSBOOT_DATA_DIR="$data" ZOSBOOT_KERNELS_DIR="$kernels" ZOSBOOT_RUN_DIR="$run_dir"
export ZOSBOOT_FILE_DELIVERY="$delivery" ZOSBOOT_THREADS="$threads"
case "$delivery" in
    nginx | django) ;;
    *) die "ZOSBOOT_FILE_DELIVERY must be nginx or django, not '$delivery'" ;;
esac
# Metrics count from this start: the workers' count files of an earlier run go.
metrics_dir="$(realpath -m "${ZOSBOOT_METRICS_DIR:-$run_dir/metrics}")"
rm -rf "$metrics_dir" 2>/dev/null || true  # a read-only one is named below
export ZOSBOOT_METRICS_DIR="$metrics_dir"

# --- who the servers run as ------------------------------------------------------------------
as_service=()
user=""
if [[ $EUID -eq 0 ]]; then
    user="${ZOSBOOT_USER:-zosboot}"
    if ! id -u "$user" >/dev/null 2>&1; then
        log "creating the system user $user"
        useradd --system --user-group --no-create-home --home-dir /nonexistent \
            --shell /usr/sbin/nologin "$user"
    fi
    as_service=(runuser -u "$user" --)
fi
# What it reads must be reachable: grant the user passage (x only, by ACL) through any
# directory on the way that shuts it out, e.g. a clone under /root (mode 700).
reach() {
    local path="$1" dir=""
    local -a parts
    IFS=/ read -ra parts <<<"${path#/}"
    for part in "${parts[@]}"; do
        dir="$dir/$part"
        [[ -d $dir ]] || break
        if ! runuser -u "$user" -- test -x "$dir"; then
            log "letting $user pass through $dir (setfacl u:$user:x)"
            setfacl -m "u:$user:x" "$dir"
        fi
    done
}
# Every directory the settings name (data, kernels, image cache, run, metrics, static files,
# the SQLite file's, the edge cache): made if missing; those the service writes are its own.
# One line naming the directory and the fix when that cannot be.
writable() {
    if [[ -n $user ]]; then runuser -u "$user" -- test -w "$1" -a -x "$1"; else test -w "$1" -a -x "$1"; fi
}
prepare() {
    local setting="$1" access="$2" dir="$3" who="${user:-$(id -un)}"
    [[ -n $user ]] && reach "$(dirname "$dir")"
    [[ $access == rw ]] || return 0
    mkdir -p "$dir" 2>/dev/null ||
        die "$setting: cannot create $dir (read-only file system?); create it writable by $who or set $setting to another directory"
    # Shared storage (NFS with root squashed) may refuse chown to root yet let the user write.
    if [[ -n $user ]] && ! chown -R "$user:" "$dir" 2>/dev/null && ! writable "$dir"; then
        die "$setting: cannot give $dir to $user (read-only file system?); mount it read-write or set $setting to a directory $user may write"
    fi
    writable "$dir" ||
        die "$setting: $dir is not writable by $who; make it so (chown/mount read-write) or set $setting to another directory"
}
mkdir -p "$data" 2>/dev/null ||
    die "ZOSBOOT_DATA_DIR: cannot create $data (read-only file system?); set ZOSBOOT_DATA_DIR to a writable directory"
# The settings need a key to load; listing directories uses none.
directories="$(DJANGO_SECRET_KEY="${DJANGO_SECRET_KEY:-listing-directories-only}" \
    "$python" manage.py service_dirs)" || die "manage.py service_dirs failed (see above)"
while IFS=$'\t' read -r setting access dir; do
    prepare "$setting" "$access" "$dir"
done <<<"$directories"

# A secret that survives restarts, made once, readable by the service only; the settings read
# it from this file when DJANGO_SECRET_KEY is not set.
key_file="${ZOSBOOT_SECRET_KEY_FILE:-$data/secret-key}"
if [[ -z "${DJANGO_SECRET_KEY:-}" && ! -s "$key_file" ]]; then
    (umask 077 && "$python" -c 'import secrets; print(secrets.token_urlsafe(50))' >"$key_file")
fi
if [[ -n $user ]]; then
    [[ -e $key_file ]] && chown "$user:" "$key_file"
    for path in "$repo" "$(readlink -f "$python")" "$key_file"; do
        reach "$(dirname "$(realpath -m "$path")")"
    done
    runuser -u "$user" -- test -r "$repo/manage.py" ||
        die "$user cannot read $repo; clone zosboot where other users may read it (e.g. /srv)"
fi
manage() { "${as_service[@]}" "$python" manage.py "$@"; }

# One box applies its migrations at start; several instances on one database apply them once,
# before any starts (ZOSBOOT_MIGRATE=0; README: Upgrading). Either way no server starts on a
# database that lacks a migration of this release.
if [[ ${ZOSBOOT_MIGRATE:-1} == 1 ]]; then
    manage migrate --noinput -v0
fi
manage migrate --check -v0 --skip-checks || die "not serving: the database lacks migrations"
manage collectstatic --noinput -v0
manage check --fail-level ERROR -v0
if [[ ${ZOSBOOT_PREBUILD:-1} == 1 ]]; then
    manage prebuild_artifacts
fi
# setup/install-service.sh prepares the install this way; systemd then runs the servers.
[[ $prepare_only == 1 ]] && exit 0

# --- the servers -------------------------------------------------------------------------------
# Behind nginx a request holds a worker only for the decision, so plain sync workers are the
# fastest; alone, gunicorn streams files itself and needs threads for them.
if [[ $delivery == nginx ]]; then
    worker_class=(--worker-class sync)
else
    # gthread, guarded: a thread serves a request once its headers are in, and its body
    # must arrive within ZOSBOOT_CLIENT_TIMEOUT (slow clients cannot hold every thread).
    worker_class=(--worker-class provisioning.slow_clients.GuardedThreadWorker --threads "$threads")
fi
# No gunicorn access log: the service writes its own line per request to stderr (client address
# after the proxy, the network, farm and node it was about; ZOSBOOT_LOG_FORMAT=text|json).
gunicorn=(
    "$repo/.venv/bin/gunicorn" zosboot.wsgi
    --workers "$workers" "${worker_class[@]}"
    --graceful-timeout 20
    --forwarded-allow-ips "${ZOSBOOT_FORWARDED_ALLOW_IPS:-127.0.0.1}"
)
[[ -n $user ]] && gunicorn+=(--user "$user" --group "$user")
pids=()
stop() {
    trap - INT TERM
    log "stopping"
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    wait
    exit 0
}
trap stop INT TERM

if [[ $delivery == nginx ]]; then
    socket="$run_dir/gunicorn.sock"
    rm -f "$socket"
    export ZOSBOOT_TRUST_PROXY="${ZOSBOOT_TRUST_PROXY:-1}"
    conf="$(manage nginx_config --embedded --listen "$bind" --upstream "unix:$socket" \
        ${user:+--user "$user"})"
    nginx -t -q -e "$data/log/nginx-error.log" -c "$conf" -p "$run_dir" ||
        die "nginx refused the generated config $conf"
    "${gunicorn[@]}" --bind "unix:$socket" &
    pids+=($!)
    nginx -e "$data/log/nginx-error.log" -c "$conf" -p "$run_dir" &
    pids+=($!)
else
    "${gunicorn[@]}" --bind "$bind" &
    pids+=($!)
fi

as_user="${user:+runuser -u $user -- }"
cat <<MSG
zosboot is serving on http://$bind/ ($delivery sends kernels and images; Ctrl-C stops)
  admin user:     ${as_user}.venv/bin/python manage.py createsuperuser   (then open http://$bind/admin/)
  add a kernel:   ${as_user}.venv/bin/python manage.py import_kernel FILE --network prod
  second factor:  ${as_user}.venv/bin/python manage.py enrol_totp USER   (then ZOSBOOT_ADMIN_REQUIRE_OTP=1)
MSG
# Either server ending ends both.
set +e
wait -n
status=$?
log "a server stopped (status $status); stopping the other"
for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
wait
exit "$status"
