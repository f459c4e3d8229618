"""Fixtures of the provisioning tests."""

from __future__ import annotations

import logging

import pytest

from provisioning import logs


class Collector(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def access_log(monkeypatch):
    """The request log records of the test, whatever handlers the settings configure."""
    collector = Collector()
    monkeypatch.setattr(logs.logger, "handlers", [collector])
    monkeypatch.setattr(logs.logger, "propagate", False)
    logs.logger.setLevel(logging.INFO)
    yield collector.records
    logs.logger.setLevel(logging.NOTSET)
