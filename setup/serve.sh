#!/usr/bin/env bash
# Prepare the embedded default install (SQLite, bundled defaults) and serve it with gunicorn.
# Called by `make run`; every step is idempotent.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
python=".venv/bin/python"
data="${ZOSBOOT_DATA_DIR:-$repo/data}"
mkdir -p "$data"

# A secret that survives restarts, made once, readable by this user only; the settings read
# it from this file when DJANGO_SECRET_KEY is not set.
key_file="${ZOSBOOT_SECRET_KEY_FILE:-$data/secret-key}"
if [[ -z "${DJANGO_SECRET_KEY:-}" && ! -s "$key_file" ]]; then
    (umask 077 && "$python" -c 'import secrets; print(secrets.token_urlsafe(50))' >"$key_file")
fi

bind="${ZOSBOOT_BIND:-127.0.0.1:8000}"
"$python" manage.py migrate --noinput -v0
"$python" manage.py collectstatic --noinput -v0
"$python" manage.py check --fail-level ERROR -v0
if "$python" manage.py help prebuild_artifacts >/dev/null 2>&1; then
    "$python" manage.py prebuild_artifacts
fi

cat <<MSG
zosboot is starting on http://$bind/
  admin user:     .venv/bin/python manage.py createsuperuser   (then open http://$bind/admin/)
  add a kernel:   .venv/bin/python manage.py import_kernel FILE --network prod
MSG
exec .venv/bin/gunicorn zosboot.wsgi \
    --bind "$bind" \
    --workers "${ZOSBOOT_WORKERS:-$(( $(nproc) * 2 + 1 ))}" \
    --access-logfile - \
    --forwarded-allow-ips "${ZOSBOOT_FORWARDED_ALLOW_IPS:-127.0.0.1}"
