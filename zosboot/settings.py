"""zosboot settings, read from the environment (the README's "Configuration" lists them all).

The real environment always wins; a `.env` file is read only when ZOSBOOT_READ_DOT_ENV=1.
"""

import contextlib
import logging
import os
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import environ
from django.core.exceptions import ImproperlyConfigured
from django.core.management.utils import get_random_secret_key

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
if env.bool("ZOSBOOT_READ_DOT_ENV", default=False):
    env.read_env(str(BASE_DIR / ".env"))

DEBUG = env.bool("DJANGO_DEBUG", default=False)

# Where the service keeps its state by default: SQLite database, built images, iPXE binaries.
ZOSBOOT_DATA_DIR = Path(env.str("ZOSBOOT_DATA_DIR", default=str(BASE_DIR / "data")))

# The key comes from DJANGO_SECRET_KEY, or from a file only this user can read (`make run`
# creates data/secret-key once, so manage.py and gunicorn agree on it across restarts).
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="")
_SECRET_KEY_FILE = Path(
    env.str("ZOSBOOT_SECRET_KEY_FILE", default=str(ZOSBOOT_DATA_DIR / "secret-key"))
)
if not SECRET_KEY and _SECRET_KEY_FILE.is_file():
    SECRET_KEY = _SECRET_KEY_FILE.read_text().strip()
if not SECRET_KEY:
    # A generated key is fine for development and for a test run (pytest sets PYTEST_VERSION);
    # in production sessions and signed cookies would not survive a restart, so refuse.
    if not (DEBUG or env.str("PYTEST_VERSION", default="")):
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY is not set and there is no secret key file "
            f"({_SECRET_KEY_FILE}). Set it to a long random string "
            "(python3 -c 'import secrets; print(secrets.token_urlsafe(50))'), "
            "or set DJANGO_DEBUG=1 for development."
        )
    SECRET_KEY = get_random_secret_key()

ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])

# The base URL written into every script, e.g. https://bootstrap.grid.tf. When unset it is
# derived from the request, from a Host that DJANGO_ALLOWED_HOSTS names explicitly.
ZOSBOOT_PUBLIC_URL = env.str("ZOSBOOT_PUBLIC_URL", default="").rstrip("/")
# Other places nodes can reach the same content when the public URL is dead: edges, a CDN, a
# second data center (base URLs, comma-separated). Images and chain scripts try the public URL,
# then each in turn; boot scripts try the kernel at their own server, then at each one's
# content address /kernel/sha256/<hex>.
ZOSBOOT_MIRRORS = [url.strip().rstrip("/") for url in env.list("ZOSBOOT_MIRRORS", default=[])]
# CDN offload: kernel downloads are decided and recorded here, then answered 302 to
# <base>/kernel/sha256/<hex> (a CDN or object store that mirrors this origin). Empty: off.
ZOSBOOT_KERNEL_REDIRECT = env.str("ZOSBOOT_KERNEL_REDIRECT", default="").rstrip("/")
# Edges and balancers in front of this instance's nginx whose X-Forwarded-For names the node
# (addresses or ranges): nginx believes them (set_real_ip_from), so history records the node.
ZOSBOOT_REAL_IP_FROM = env.list("ZOSBOOT_REAL_IP_FROM", default=[])
# Behind a reverse proxy: believe its X-Forwarded-Proto/-Host/-For headers.
ZOSBOOT_TRUST_PROXY = env.bool("ZOSBOOT_TRUST_PROXY", default=False)
if ZOSBOOT_TRUST_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    USE_X_FORWARDED_HOST = True

CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])
if ZOSBOOT_PUBLIC_URL:
    # The admin behind an HTTPS proxy posts from the public origin.
    _public = urlsplit(ZOSBOOT_PUBLIC_URL)
    CSRF_TRUSTED_ORIGINS.append(f"{_public.scheme}://{_public.netloc}")
    if _public.scheme == "https":
        # Served over HTTPS: the admin's cookies never travel in clear.
        SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = True

SILENCED_SYSTEM_CHECKS = [
    # HSTS and the HTTP-to-HTTPS redirect are deliberate choices, not oversights: iPXE builds
    # without HTTPS (older firmware, some BMCs) can only boot over plain HTTP, so the service
    # must keep answering it. Terminate TLS at the front server and serve both schemes
    # (README, Production).
    "security.W004",  # SECURE_HSTS_SECONDS
    "security.W008",  # SECURE_SSL_REDIRECT
]

INSTALLED_APPS = [
    # Django's admin on zosboot's admin site (provisioning.admin_site: the second factor).
    "provisioning.apps.AdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_otp",
    # django-otp's plugins and axes, under names an operator reads (provisioning/apps.py).
    "provisioning.apps.TOTPDevicesConfig",
    "provisioning.apps.BackupCodesConfig",
    "provisioning.apps.LoginLockoutConfig",
    "provisioning",
    "artifacts",
    "portal",
]

MIDDLEWARE = [
    # First: its line per request has the status the client gets and the time every layer took.
    "provisioning.logs.RequestLogMiddleware",
    # Second: /admin/ and /api/ answer only ZOSBOOT_OPS_ALLOWED_NETWORKS, before any session,
    # login form or token is looked at.
    "provisioning.access.OpsNetworksMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "provisioning.headers.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # request.user.is_verified(): whether this session passed a second factor.
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as axes requires: it answers a locked-out login attempt.
    "axes.middleware.AxesMiddleware",
]

# What node requests (scripts, provisioning answers, kernels, images, health checks) go
# through: the log line and the security headers, nothing of the admin's sessions, users,
# second factor, messages, CSRF or lockout (provisioning.frontdoor).
NODE_MIDDLEWARE = [
    "provisioning.logs.RequestLogMiddleware",
    "django.middleware.security.SecurityMiddleware",
]

AUTHENTICATION_BACKENDS = [
    # First: refuses a login from a locked-out user and address before the password is checked.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

ROOT_URLCONF = "zosboot.urls"
WSGI_APPLICATION = "zosboot.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
    {
        # iPXE scripts are plain text: HTML escaping would corrupt them. Values are made
        # safe for iPXE by provisioning.scripts before they reach a template.
        "NAME": "text",
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": False,
        "OPTIONS": {"autoescape": False},
    },
]

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{ZOSBOOT_DATA_DIR / 'zosboot.sqlite3'}")
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets readers run beside the one writer; IMMEDIATE transactions plus a busy timeout
    # make concurrent gunicorn workers queue for the write lock instead of failing.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
        }
    )
    if DATABASES["default"]["NAME"] != ":memory:":
        # Where it cannot be made (a read-only mount), setup/serve.sh says so in one line.
        with contextlib.suppress(OSError):
            Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
# Keep connections across requests: opening one per request (and, for SQLite, the WAL
# checkpoint when the last one closes) costs more than serving a boot script.
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DJANGO_CONN_MAX_AGE", default=60))
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
# Times with seconds, year first (zosboot/formats/en/formats.py).
FORMAT_MODULE_PATH = ["zosboot.formats"]
TIME_ZONE = env.str("DJANGO_TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env.str("ZOSBOOT_STATIC_ROOT", default=str(ZOSBOOT_DATA_DIR / "static")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# Uploaded kernels can be hundreds of MB: stream them to disk, never hold them in memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024

# Logs go to stderr (gunicorn's workers pass it on), one line per request among them
# (provisioning.logs). "text" for people reading a terminal or journal, "json" (one object per
# line) for a log collector; `manage.py check` names any other value.
ZOSBOOT_LOG_FORMAT = env.str("ZOSBOOT_LOG_FORMAT", default="text")
# No format names the thread, so records need not look it up (Python's own advice for logging
# on a hot path: every script request writes a line). gunicorn's own lines name the process.
logging.logThreads = logging.logMultiprocessing = False
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "text": {
            "format": "%(asctime)s %(levelname)s %(name)s %(message)s",
            "datefmt": "%Y-%m-%dT%H:%M:%S%z",
        },
        "json": {"()": "provisioning.logs.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if ZOSBOOT_LOG_FORMAT == "json" else "text",
        }
    },
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {
        "zosboot": {
            "handlers": ["console"],
            "level": env.str("ZOSBOOT_LOG_LEVEL", "INFO"),
            "propagate": False,
        },
    },
}

# --- zosboot ---------------------------------------------------------------------------
ZOSBOOT_KERNELS_DIR = Path(env.str("ZOSBOOT_KERNELS_DIR", default=str(BASE_DIR / "kernels")))
# Time server the boot script sets the clock from (HTTPS needs a right clock); empty = skip.
ZOSBOOT_NTP_SERVER = env.str("ZOSBOOT_NTP_SERVER", default="pool.ntp.org")
# An unknown MAC asking /provision/<mac> is recorded as pending, up to this many at once.
ZOSBOOT_MAX_PENDING_NODES = env.int("ZOSBOOT_MAX_PENDING_NODES", default=1000)
ZOSBOOT_DISCOVERY_RETRY_SECONDS = env.int("ZOSBOOT_DISCOVERY_RETRY_SECONDS", default=30)
# One client address records at most this many new pending nodes per window (a flood of
# made-up MACs from one place cannot crowd out real nodes); counted in the database.
ZOSBOOT_DISCOVERY_PER_ADDRESS = env.int("ZOSBOOT_DISCOVERY_PER_ADDRESS", default=50)
ZOSBOOT_DISCOVERY_WINDOW_SECONDS = env.int("ZOSBOOT_DISCOVERY_WINDOW_SECONDS", default=600)
ZOSBOOT_REFUSED_RETRY_SECONDS = env.int("ZOSBOOT_REFUSED_RETRY_SECONDS", default=300)
# Reports a node sends about its boot (provisioning.reports): at most this many per client
# address per window, in each worker (a boot sends a few; a site behind one address, more).
ZOSBOOT_REPORTS_PER_ADDRESS = env.int("ZOSBOOT_REPORTS_PER_ADDRESS", default=300)
ZOSBOOT_REPORTS_WINDOW_SECONDS = env.int("ZOSBOOT_REPORTS_WINDOW_SECONDS", default=600)
# Boot history older than this is removed by `manage.py prune_boot_history`.
ZOSBOOT_BOOT_HISTORY_DAYS = env.int("ZOSBOOT_BOOT_HISTORY_DAYS", default=90)

# Boot images: where the pinned iPXE binaries are (setup/install-ipxe.sh puts them there),
# where built images are cached, and how much building may happen at once.
ZOSBOOT_IPXE_DIR = Path(env.str("ZOSBOOT_IPXE_DIR", default=str(ZOSBOOT_DATA_DIR / "ipxe")))
ZOSBOOT_ARTIFACTS_DIR = Path(
    env.str("ZOSBOOT_ARTIFACTS_DIR", default=str(ZOSBOOT_DATA_DIR / "artifacts"))
)
ZOSBOOT_ARTIFACTS_MAX_BYTES = env.int("ZOSBOOT_ARTIFACTS_MAX_BYTES", default=2 * 1024**3)
ZOSBOOT_MAX_CONCURRENT_BUILDS = env.int("ZOSBOOT_MAX_CONCURRENT_BUILDS", default=2)
# How long a request waits for a free build slot before answering 503 + Retry-After.
ZOSBOOT_BUILD_WAIT_SECONDS = env.float("ZOSBOOT_BUILD_WAIT_SECONDS", default=20.0)

# --- file delivery (kernels and images) -----------------------------------------------
# "nginx": Django decides and answers X-Accel-Redirect; the front server sends the bytes (what
# `make run` sets up). "django": Django streams files itself (development, no front server).
ZOSBOOT_FILE_DELIVERY = env.str("ZOSBOOT_FILE_DELIVERY", default="django")
# Sockets, pid files and the stream slots of Django delivery.
ZOSBOOT_RUN_DIR = Path(env.str("ZOSBOOT_RUN_DIR", default=str(ZOSBOOT_DATA_DIR / "run")))
# Django delivery: files streamed at once by all workers together; more get 503 + Retry-After.
ZOSBOOT_MAX_STREAMS = env.int("ZOSBOOT_MAX_STREAMS", default=16)
# gunicorn threads per worker; in Django delivery each worker keeps two of them for scripts.
ZOSBOOT_THREADS = env.int("ZOSBOOT_THREADS", default=8)
# Without a front server (provisioning.slow_clients): a client has this long to send its
# request headers, and its body this long plus a second per 64 KiB.
ZOSBOOT_CLIENT_TIMEOUT = env.float("ZOSBOOT_CLIENT_TIMEOUT", default=10.0)
# The boot script gives up a download after this many seconds without a byte (then retries).
ZOSBOOT_DOWNLOAD_IDLE_SECONDS = env.int("ZOSBOOT_DOWNLOAD_IDLE_SECONDS", default=60)
# Kernel uploads (the publishing API) larger than this are refused with 413.
ZOSBOOT_MAX_KERNEL_BYTES = env.int("ZOSBOOT_MAX_KERNEL_BYTES", default=1024**3)
# Boot history is written in batches this often (seconds) by each worker; 0: in the request.
ZOSBOOT_HISTORY_FLUSH_SECONDS = env.float("ZOSBOOT_HISTORY_FLUSH_SECONDS", default=1.0)

# --- metrics --------------------------------------------------------------------------
# Each worker writes its counts here; /metrics adds them up (prometheus_client multiprocess
# mode reads the variable when it is first imported, so it is set here, before any count).
ZOSBOOT_METRICS_DIR = Path(env.str("ZOSBOOT_METRICS_DIR", default=str(ZOSBOOT_RUN_DIR / "metrics")))
with contextlib.suppress(OSError):  # setup/serve.sh names a directory it cannot make
    ZOSBOOT_METRICS_DIR.mkdir(parents=True, exist_ok=True)
os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(ZOSBOOT_METRICS_DIR)
# Who may read /metrics without logging in (a staff login may read it from anywhere).
ZOSBOOT_METRICS_ALLOWED_NETWORKS = env.list(
    "ZOSBOOT_METRICS_ALLOWED_NETWORKS", default=["127.0.0.0/8", "::1/128"]
)

# --- release signatures (provisioning/signatures.py) ------------------------------------
# The allowed-signers file (ssh-keygen format) release signatures are checked against.
ZOSBOOT_RELEASE_SIGNERS = env.str("ZOSBOOT_RELEASE_SIGNERS", default="")
# These networks, and every branch link when ZOSBOOT_SIGNED_LINKS is on, point only at a
# kernel whose signature verifies. Deployment settings on purpose: nothing in the admin or
# the API can turn them off.
ZOSBOOT_SIGNED_NETWORKS = env.list("ZOSBOOT_SIGNED_NETWORKS", default=[])
ZOSBOOT_SIGNED_LINKS = env.bool("ZOSBOOT_SIGNED_LINKS", default=False)
# Four eyes: on these networks a kernel switch made in the admin or the API waits until a
# second staff user approves it (Pending kernel switches); provisioning/switching.py.
ZOSBOOT_FOUR_EYES_NETWORKS = env.list("ZOSBOOT_FOUR_EYES_NETWORKS", default=[])

# --- the ops surface: who may reach it, how logins are guarded --------------------------
# Address ranges (CIDR) that may reach /admin/ and /api/ (the client address as the trusted
# proxy saw it); empty: anywhere. Others get 403 before any login form or token check.
ZOSBOOT_OPS_ALLOWED_NETWORKS = env.list("ZOSBOOT_OPS_ALLOWED_NETWORKS", default=[])
# Staff need a verified TOTP device (manage.py enrol_totp) to use the admin.
ZOSBOOT_ADMIN_REQUIRE_OTP = env.bool("ZOSBOOT_ADMIN_REQUIRE_OTP", default=False)
OTP_TOTP_ISSUER = "zosboot"
# Admin logins (django-axes): after this many failures for one user name from one address,
# that pair is locked out until the failures are this many minutes old. Counted in the
# database, so across workers and instances; lockouts are listed (and lifted) in the admin.
ZOSBOOT_LOGIN_LOCKOUT_ATTEMPTS = env.int("ZOSBOOT_LOGIN_LOCKOUT_ATTEMPTS", default=5)
ZOSBOOT_LOGIN_LOCKOUT_MINUTES = env.int("ZOSBOOT_LOGIN_LOCKOUT_MINUTES", default=15)
AXES_FAILURE_LIMIT = ZOSBOOT_LOGIN_LOCKOUT_ATTEMPTS
AXES_COOLOFF_TIME = timedelta(minutes=ZOSBOOT_LOGIN_LOCKOUT_MINUTES)
# Per user name *and* address: guessing from one place locks that place out for that user,
# and nobody elsewhere can lock the operators out of their own accounts.
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
# The same client address as the rest of the service (the trusted proxy's view of it).
AXES_CLIENT_IP_CALLABLE = "provisioning.clients.client_ip"
AXES_COOLOFF_MESSAGE = (
    "Too many failed logins for this user from this address. Try again after "
    f"{ZOSBOOT_LOGIN_LOCKOUT_MINUTES} minutes without attempts, or ask another operator to "
    "remove the lockout (admin: Axes, Access attempts)."
)
