"""Boot history written in batches by each worker; here the queue itself. The stack tests run
the writer thread in real workers and stop them to show that nothing is lost."""

from __future__ import annotations

import pytest

from provisioning import history
from provisioning.models import BootEvent


@pytest.fixture
def batched(settings):
    settings.ZOSBOOT_HISTORY_FLUSH_SECONDS = 3600
    history.flush()
    yield
    history.flush()


@pytest.mark.django_db
def test_batched_events_are_written_by_a_flush(client, prod, batched):
    for farm in (1, 2, 3):
        assert client.get(f"/ipxe/prod/{farm}").status_code == 200
    assert BootEvent.objects.count() == 0
    assert history.flush() == 3
    rows = BootEvent.objects.order_by("farmer_id")
    assert [(e.kind, e.farmer_id, e.network_id) for e in rows] == [
        ("script", farm, prod.pk) for farm in (1, 2, 3)
    ]


@pytest.mark.django_db
def test_a_full_queue_drops_the_oldest_and_says_so(client, prod, batched, monkeypatch, caplog):
    monkeypatch.setattr(history, "MAX_QUEUED", 5)
    monkeypatch.setattr(history.logger, "handlers", [caplog.handler])
    for farm in range(1, 9):
        client.get(f"/ipxe/prod/{farm}")
    assert "boot history queue full" in caplog.text
    assert history.flush() == 5
    assert sorted(BootEvent.objects.values_list("farmer_id", flat=True)) == [4, 5, 6, 7, 8]
