"""The log line per request: its fields, what a boot answer adds, JSON, hostile paths."""

import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.core import checks

from provisioning import logs
from provisioning.models import Farm, Node

pytestmark = pytest.mark.django_db

REPO = Path(__file__).resolve().parents[2]
FIELDS = {"method", "path", "status", "duration_ms", "client", "network", "farm", "node"}


def only(records):
    assert len(records) == 1, [record.getMessage() for record in records]
    return records[0]


def as_json(record) -> dict:
    line = logs.JsonFormatter().format(record)
    assert "\n" not in line and "\r" not in line
    return json.loads(line)


def test_each_request_gets_one_line_with_method_path_status_duration_and_client(
    client, prod, access_log
):
    client.get("/ipxe/prod/1234", REMOTE_ADDR="10.0.2.15")
    record = only(access_log)
    assert record.levelno == logging.INFO
    assert re.fullmatch(
        r"GET /ipxe/prod/1234 200 \d+\.\dms client=10\.0\.2\.15 network=prod farm=1234",
        record.getMessage(),
    )
    assert record.access["duration_ms"] >= 0


def test_the_client_is_the_address_the_trusted_proxy_saw(client, prod, access_log, settings):
    forwarded = {"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": "203.0.113.9, 10.0.0.7"}
    settings.ZOSBOOT_TRUST_PROXY = False
    client.get("/ipxe/prod", **forwarded)
    settings.ZOSBOOT_TRUST_PROXY = True
    client.get("/ipxe/prod", **forwarded)
    assert [record.access["client"] for record in access_log] == ["127.0.0.1", "10.0.0.7"]


def test_a_provisioned_node_line_names_its_network_farm_and_mac(client, prod, access_log):
    farm = Farm.objects.create(farmer_id=1234)
    Node.objects.create(mac="52:54:00:ab:cd:ef", farm=farm, network=prod)
    client.get("/provision/52-54-00-AB-CD-EF")
    fields = only(access_log).access
    assert (fields["network"], fields["farm"], fields["node"]) == (
        "prod",
        1234,
        "52:54:00:ab:cd:ef",
    )
    assert only(access_log).getMessage().endswith(" network=prod farm=1234 node=52:54:00:ab:cd:ef")


def test_a_waiting_node_line_names_the_mac_alone(client, prod, access_log):
    client.get("/provision/525400123456")
    fields = only(access_log).access
    assert (fields["network"], fields["farm"], fields["node"]) == (None, None, "52:54:00:12:34:56")


def test_a_kernel_download_line_names_the_network(client, prod, access_log):
    client.get("/kernel/net/prod.efi")
    assert only(access_log).access["network"] == "prod"


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/no/such/page", 404),
        ("/ipxe/nosuchnet/1234", 404),
        ("/ipxe/prod/12a", 400),
        ("/provision/not-a-mac", 400),
    ],
)
def test_error_answers_are_logged_with_their_status(client, prod, access_log, path, status):
    assert client.get(path).status_code == status
    record = only(access_log)
    assert record.access["status"] == status
    assert f" {status} " in record.getMessage()
    assert record.access["network"] is None  # only what was resolved, never what was typed


def test_a_host_header_the_service_refuses_is_logged_as_400(client, prod, access_log, settings):
    settings.ALLOWED_HOSTS = ["boot.example.org"]
    client.get("/ipxe/prod", HTTP_HOST="evil.example.com")
    assert only(access_log).access["status"] == 400


def test_json_lines_parse_and_carry_every_field(client, prod, access_log):
    client.get("/ipxe/prod/1234", REMOTE_ADDR="10.0.2.15")
    entry = as_json(only(access_log))
    assert FIELDS <= entry.keys()
    assert entry["logger"] == "zosboot.access" and entry["level"] == "INFO" and entry["time"]
    assert (entry["method"], entry["path"], entry["status"]) == ("GET", "/ipxe/prod/1234", 200)
    assert (entry["client"], entry["network"], entry["farm"]) == ("10.0.2.15", "prod", 1234)
    assert entry["node"] is None
    assert isinstance(entry["duration_ms"], float)


HOSTILE = [
    "/ipxe/prod/%0a2025-01-01T00:00:00+0000 INFO zosboot.access GET /admin/ 200",
    "/ipxe/%0d%0aforged",
    '/x" status=200 client=1.2.3.4',
    '/x", "status": 200, "client": "1.2.3.4',
    "/x'quote'%22%27",
    "/x%00%1b[31m%e2%80%a8%c2%85tail",
    "/x\\n",
]


@pytest.mark.parametrize("path", HOSTILE)
def test_a_hostile_path_stays_one_line_and_adds_no_field(client, prod, access_log, path):
    client.get(path)
    record = only(access_log)
    message = record.getMessage()
    assert message.isprintable() and message.isascii()
    # Fields are separated by spaces and the path has none: whatever it holds, it is one field.
    method, logged_path, status, duration, *rest = message.split(" ")
    assert (method, logged_path, status) == (
        "GET",
        record.access["path"],
        str(record.access["status"]),
    )
    assert duration.endswith("ms") and rest == ["client=127.0.0.1"]
    for quoting in ('"', "'", "\\"):
        assert quoting not in logged_path
    entry = as_json(record)
    assert entry.keys() == FIELDS | {"time", "level", "logger", "message"}
    assert entry["client"] == "127.0.0.1" and entry["status"] in (400, 404)


def test_a_long_path_is_cut_and_marked(client, prod, access_log):
    client.get("/ipxe/prod/" + "a" * 4000)
    path = only(access_log).access["path"]
    assert path == "/ipxe/prod/" + "a" * (logs.MAX_PATH - len("/ipxe/prod/")) + logs.CUT_MARK
    assert json.loads(logs.JsonFormatter().format(only(access_log)))["path"] == path


def test_a_cut_never_ends_in_half_an_escape():
    for length in range(logs.MAX_PATH - 4, logs.MAX_PATH + 4):
        cut = logs.loggable("/" + "x" * length + "\n" * 100, logs.MAX_PATH)
        kept = cut.removesuffix(logs.CUT_MARK)
        assert len(kept) <= logs.MAX_PATH
        assert re.fullmatch(r"/x*(%0A)*", kept), kept[-8:]


def test_an_unknown_log_format_is_a_configuration_error(settings):
    settings.ZOSBOOT_LOG_FORMAT = "xml"
    assert "provisioning.E004" in [message.id for message in checks.run_checks()]
    settings.ZOSBOOT_LOG_FORMAT = "json"
    assert "provisioning.E004" not in [message.id for message in checks.run_checks()]


def _service_stderr(
    tmp_path: Path, code: str = "Client().get('/no/such%0a%22page')", **settings: str
) -> str:
    """Requests through the configured logging, in a process of its own, as gunicorn runs them
    (`code` makes them with `Client`, which is imported)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "ZOSBOOT_"))}
    env.pop("PYTEST_VERSION", None)
    env.update(
        DJANGO_SECRET_KEY="log-test-" + "k" * 60,
        DJANGO_ALLOWED_HOSTS="testserver",
        ZOSBOOT_DATA_DIR=str(tmp_path),
        ZOSBOOT_IPXE_DIR=str(tmp_path),
        ZOSBOOT_STATIC_ROOT=str(tmp_path),  # whitenoise warns on stderr about a missing one
        **settings,
    )
    code = f"from django.test import Client; {code}"
    result = subprocess.run(
        [sys.executable, str(REPO / "manage.py"), "shell", "--no-imports", "-c", code],
        env=env, capture_output=True, text=True, timeout=60, cwd=REPO,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stderr


def test_the_service_writes_text_lines_by_default(tmp_path):
    lines = _service_stderr(tmp_path).splitlines()
    assert len(lines) == 1, lines
    assert re.fullmatch(
        r"\S+ INFO zosboot\.access GET /no/such%0A%22page 404 \S+ms client=127\.0\.0\.1", lines[0]
    )


def test_the_json_setting_makes_every_line_a_json_object(tmp_path):
    lines = _service_stderr(tmp_path, ZOSBOOT_LOG_FORMAT="json").splitlines()
    assert len(lines) == 1, lines
    entry = json.loads(lines[0])
    assert FIELDS <= entry.keys()
    assert (entry["path"], entry["status"], entry["client"]) == (
        "/no/such%0A%22page",
        404,
        "127.0.0.1",
    )


# A failure in a view: the database was never migrated, so the portal's query fails.
FAILING_REQUEST = "Client(raise_request_exception=False).get('/')"


def _unmigrated(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'never-migrated.sqlite3'}"


def test_a_500_is_logged_once_with_its_traceback_in_text(tmp_path):
    stderr = _service_stderr(tmp_path, FAILING_REQUEST, DATABASE_URL=_unmigrated(tmp_path))
    assert stderr.count("Internal Server Error") == 1, stderr
    assert "Traceback (most recent call last)" in stderr
    errors = [line for line in stderr.splitlines() if " ERROR " in line]
    assert len(errors) == 1 and "django.request Internal Server Error: /" in errors[0], stderr
    assert "no such table" in stderr
    assert re.search(r"INFO zosboot\.access GET / 500 ", stderr)


def test_a_500_is_logged_once_with_its_traceback_in_json(tmp_path):
    stderr = _service_stderr(
        tmp_path, FAILING_REQUEST, ZOSBOOT_LOG_FORMAT="json", DATABASE_URL=_unmigrated(tmp_path)
    )
    entries = [json.loads(line) for line in stderr.splitlines()]
    errors = [entry for entry in entries if entry["level"] == "ERROR"]
    assert len(errors) == 1, entries
    assert errors[0]["logger"] == "django.request"
    assert errors[0]["message"] == "Internal Server Error: /"
    assert "Traceback (most recent call last)" in errors[0]["exception"]
    assert "no such table" in errors[0]["exception"]
    assert [entry["status"] for entry in entries if entry["logger"] == "zosboot.access"] == [500]


def test_a_request_for_a_host_the_service_does_not_serve_is_a_security_warning(tmp_path):
    code = "Client(raise_request_exception=False).get('/ipxe/prod', HTTP_HOST='evil.example%0a')"
    stderr = _service_stderr(tmp_path, code, ZOSBOOT_LOG_FORMAT="json")
    entries = [json.loads(line) for line in stderr.splitlines()]
    warnings = [entry for entry in entries if entry["level"] == "WARNING"]
    assert len(warnings) == 1, entries
    assert warnings[0]["logger"] == "django.security.DisallowedHost"
    assert "evil.example" in warnings[0]["message"]
    assert warnings[0]["message"].endswith("path=/ipxe/prod client=127.0.0.1")
    assert not any(entry["level"] == "ERROR" for entry in entries)
    assert [entry["status"] for entry in entries if entry["logger"] == "zosboot.access"] == [400]
