"""Prometheus metrics at `/metrics`, correct across gunicorn workers.

prometheus_client's multiprocess mode: each worker writes its counts to files under
`PROMETHEUS_MULTIPROC_DIR` (set from `ZOSBOOT_METRICS_DIR` before anything counts; `make run`
empties it at start) and a scrape adds them up, so N requests spread over the workers add
exactly N. Labels carry only bounded values (known networks and kernels, formats, outcomes),
never what a client typed. Pending nodes and the size of the boot history are read from the
database at scrape time, the latter from its id range, without counting a large table.
"""

from __future__ import annotations

from django.conf import settings
from django.db.models import Max, Min
from django.http import HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily

from .access import address_in
from .clients import client_ip

SCRIPTS = Counter(
    "zosboot_scripts", "Boot scripts answered at /ipxe/..., by network and outcome.",
    ["network", "outcome"],
)  # fmt: skip
PROVISION_ANSWERS = Counter(
    "zosboot_provision_answers", "Answers at /provision/<mac>: booted, pending, refused, error.",
    ["answer"],
)  # fmt: skip
KERNEL_DOWNLOADS = Counter(
    "zosboot_kernel_downloads", "Kernel downloads sent (or handed to the front server).", ["kernel"]
)
# Counted when a download starts, the whole file: behind nginx the service never sees the
# transfer end (nginx's access log has what each transfer really sent).
KERNEL_BYTES = Counter(
    "zosboot_kernel_bytes", "Bytes of the kernel downloads started (whole files).", ["kernel"]
)
DOWNLOADS_IN_FLIGHT = Gauge(
    "zosboot_downloads_in_flight", "Files being streamed by the workers (Django delivery).",
    multiprocess_mode="livesum",
)  # fmt: skip
SHED = Counter("zosboot_requests_shed", "Downloads answered 503 + Retry-After (over the cap).")
IMAGES_SERVED = Counter(
    "zosboot_images_served", "Boot images served, by format and cache (hit or miss).",
    ["format", "cache"],
)  # fmt: skip
PXE_KITS = Counter(
    "zosboot_pxe_kits", "PXE kits downloaded, by network ('-': the provisioning kit).",
    ["network"],
)  # fmt: skip
# What nodes report of their boots (provisioning.reports).
REPORTS = Counter(
    "zosboot_boot_reports", "Reports from nodes, by milestone and outcome (taken, replayed, "
    "refused: not a script of this service, limited: too many from one address).",
    ["milestone", "outcome"],
)  # fmt: skip
BOOTS = Counter(
    "zosboot_boots", "Boots as nodes report them, by network and outcome (arrived: the kernel "
    "arrived; failed, no-network, start-failed: why not).",
    ["network", "outcome"],
)  # fmt: skip
BOOT_SECONDS = Histogram(
    "zosboot_boot_seconds", "Seconds from a boot script served to its kernel arrived.",
    ["network"], buckets=(5, 10, 20, 30, 60, 120, 300, 600, 1800),
)  # fmt: skip
IMAGE_BUILD_SECONDS = Histogram(
    "zosboot_image_build_seconds", "Time to build one boot image, by format.", ["format"],
    buckets=(0.01, 0.03, 0.1, 0.3, 1, 3, 10, 30),
)  # fmt: skip


class _DatabaseFigures:
    """Figures read at scrape time rather than counted by workers."""

    def collect(self):
        from .models import BootEvent, Node

        yield GaugeMetricFamily(
            "zosboot_pending_nodes",
            "Nodes waiting for approval.",
            value=Node.objects.pending().count(),
        )
        ids = BootEvent.objects.aggregate(low=Min("id"), high=Max("id"))
        rows = 0 if ids["low"] is None else ids["high"] - ids["low"] + 1
        yield GaugeMetricFamily(
            "zosboot_boot_history_rows",
            "Rows in the boot history (from the id range: an upper bound, no table count).",
            value=rows,
        )


def _allowed(request: HttpRequest) -> bool:
    if request.user.is_authenticated and request.user.is_staff:
        return True
    return address_in(client_ip(request), settings.ZOSBOOT_METRICS_ALLOWED_NETWORKS)


@never_cache
@require_safe
def metrics(request: HttpRequest) -> HttpResponse:
    if not _allowed(request):
        return HttpResponse(
            "metrics are served to the addresses in ZOSBOOT_METRICS_ALLOWED_NETWORKS\n",
            status=403, content_type="text/plain; charset=utf-8",
        )  # fmt: skip
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    registry.register(_DatabaseFigures())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
