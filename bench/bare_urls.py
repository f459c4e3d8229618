"""`/bench-bare` (and `/bench-minimal`, the same view behind fewer middlewares: bench_wsgi.py):
a view that returns the bytes of a boot script and does nothing else."""

import functools
import os
from pathlib import Path

from django.http import HttpResponse
from django.urls import path
from django.views.decorators.cache import never_cache

from zosboot.urls import urlpatterns as service_patterns


@functools.cache
def _body() -> bytes:
    return Path(os.environ["ZOSBOOT_BENCH_BODY_FILE"]).read_bytes()


@never_cache
def bare(request):
    return HttpResponse(_body(), content_type="text/plain; charset=utf-8")


urlpatterns = [path("bench-bare", bare), path("bench-minimal", bare), *service_patterns]
