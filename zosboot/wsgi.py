"""WSGI entry point: `gunicorn zosboot.wsgi`."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "zosboot.settings")

django_application = get_wsgi_application()

from provisioning import store  # noqa: E402 (needs Django set up)
from provisioning.frontdoor import connection_scheme  # noqa: E402

application = connection_scheme(django_application)

# Uploads a killed worker left half-written go at each start.
try:
    store.sweep_incoming()
except OSError:
    pass
