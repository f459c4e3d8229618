"""WSGI entry point: `gunicorn zosboot.wsgi`."""

import contextlib
import gc
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "zosboot.settings")

django_application = get_wsgi_application()

from django.db import DatabaseError  # noqa: E402 (needs Django set up)
from django.urls import get_resolver  # noqa: E402

from provisioning import answers, store  # noqa: E402
from provisioning.frontdoor import NodeHandler, by_path, connection_scheme  # noqa: E402

application = connection_scheme(by_path(NodeHandler(), django_application))

# Uploads a killed worker left half-written go at each start.
with contextlib.suppress(OSError):
    store.sweep_incoming()
# Each worker knows every network, kernel, link and farm, and has made each network's script,
# before its first request (a boot storm after a power cut meets workers that have just
# started too). Whatever stops it (a database not migrated yet, no database allowed here) the
# first request meets and reports.
get_resolver().url_patterns  # noqa: B018 (imports every URLconf now, not at the first request)
with contextlib.suppress(DatabaseError, RuntimeError):
    answers.prepare()
# What is loaded by now lives as long as the worker: the garbage collector need never walk it
# again (thousands of farms, every module), which keeps its pauses out of the scripts' time.
gc.freeze()
