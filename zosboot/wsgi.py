"""WSGI entry point: `gunicorn zosboot.wsgi`."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "zosboot.settings")

application = get_wsgi_application()
