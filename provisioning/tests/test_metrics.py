"""/metrics: who may read it, and the figures it shows."""

import re

import pytest

pytestmark = pytest.mark.django_db


def figure(text: str, line: str) -> float:
    match = re.search(rf"^{re.escape(line)} ([0-9.e+]+)$", text, re.M)
    return float(match.group(1)) if match else 0.0


def test_metrics_are_served_to_loopback_and_count_scripts(client, prod):
    line = 'zosboot_scripts_total{network="prod",outcome="served"}'
    before = figure(client.get("/metrics").content.decode(), line)
    client.get("/ipxe/prod/1")
    client.get("/ipxe/prod/2")
    after = figure(client.get("/metrics", REMOTE_ADDR="127.0.0.1").content.decode(), line)
    assert after - before == 2


def test_metrics_are_refused_to_other_addresses_but_not_to_staff(client, admin_client, settings):
    assert client.get("/metrics", REMOTE_ADDR="192.0.2.7").status_code == 403
    settings.ZOSBOOT_METRICS_ALLOWED_NETWORKS = ["192.0.2.0/24"]
    assert client.get("/metrics", REMOTE_ADDR="192.0.2.7").status_code == 200
    settings.ZOSBOOT_METRICS_ALLOWED_NETWORKS = []
    assert admin_client.get("/metrics", REMOTE_ADDR="198.51.100.1").status_code == 200


def test_shed_downloads_and_images_are_counted(client, prod, kernel, settings):
    settings.ZOSBOOT_MAX_STREAMS = 1
    held = client.get(f"/kernel/{kernel.name}")
    before = figure(client.get("/metrics").content.decode(), "zosboot_requests_shed_total")
    assert client.get(f"/kernel/{kernel.name}").status_code == 503
    text = client.get("/metrics").content.decode()
    assert figure(text, "zosboot_requests_shed_total") - before == 1
    assert figure(text, "zosboot_downloads_in_flight") >= 1
    b"".join(held.streaming_content)
    client.get("/krn/prod/1")
    text = client.get("/metrics").content.decode()
    assert figure(text, 'zosboot_images_served_total{cache="miss",format="krn"}') >= 1
    assert 'zosboot_image_build_seconds_count{format="krn"}' in text
