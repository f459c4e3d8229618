"""Any admin list as CSV: every row of the list with its filters, search and order, streamed;
the boot history's full values; other lists the columns they show, as text; no spreadsheet
formula; only for those who may see the list."""

from __future__ import annotations

import csv
import io
from urllib.parse import quote

import pytest
from django.contrib.auth import get_user_model
from django.http import StreamingHttpResponse

from provisioning.admin.export import CHUNK
from provisioning.models import BootEvent, Farm, Node

pytestmark = pytest.mark.django_db

MAC = "52:54:00:00:12:34"


def _csv(response) -> list[list[str]]:
    assert isinstance(response, StreamingHttpResponse)
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith("attachment; filename=")
    text = b"".join(response.streaming_content).decode()
    return list(csv.reader(io.StringIO(text)))


def test_the_history_exports_as_csv_with_its_filters_and_search(admin_client, prod, kernel):
    Node.objects.create(mac=MAC)  # a part of its MAC finds it (provisioning/admin/search.py)
    for n in range(CHUNK + 5):  # more than one chunk
        BootEvent.objects.create(kind="kernel", mac=MAC, kernel_name=kernel.name,
                                 kernel_sha256=kernel.sha256, user_agent=f"iPXE {n}")  # fmt: skip
    BootEvent.objects.create(kind="script", mac=MAC, user_agent="=HYPERLINK(evil)")
    BootEvent.objects.create(kind="script", mac="52:54:00:00:00:09")
    page = admin_client.get("/admin/provisioning/bootevent/", {"q": "00:12:34"})
    link = f"/admin/provisioning/bootevent/export.csv?q={quote('00:12:34')}"
    assert link in page.content.decode()
    rows = _csv(admin_client.get(link))
    assert rows[0][:4] == ["created at", "kind", "client ip", "MAC address"]
    assert len(rows) == 1 + CHUNK + 6  # every row of the search, not a page
    assert {row[3] for row in rows[1:]} == {MAC}
    assert rows[1][0] >= rows[-1][0]  # the list's order: newest first
    assert "'=HYPERLINK(evil)" in [row[8] for row in rows]  # no formula for a spreadsheet
    assert kernel.sha256 in rows[2]  # the whole sha256, not the list's 16 characters
    kernels = _csv(admin_client.get("/admin/provisioning/bootevent/export.csv?kind=script"))
    assert len(kernels) == 3


def test_any_list_exports_the_columns_it_shows_as_text(admin_client, prod, kernel):
    Node.objects.create(mac=MAC, farm=Farm.objects.create(farmer_id=7, name="Seven"),
                        network=prod)  # fmt: skip
    Node.objects.create(mac="52:54:00:00:00:09")
    rows = _csv(admin_client.get("/admin/provisioning/node/export.csv?status=pending"))
    assert rows[0][:3] == ["MAC address", "status", "farm"]
    assert [row[:2] for row in rows[1:]] == [["52:54:00:00:00:09", "waiting for approval"]]
    networks = _csv(admin_client.get("/admin/provisioning/network/export.csv?slug=prod"))
    assert networks[1][0] == "prod" and kernel.name in networks[1][3]
    assert "<" not in "".join(networks[1])  # the list's links and line breaks are text here
    users = _csv(admin_client.get("/admin/auth/user/export.csv"))
    assert users[1][0] == "admin"


def test_exporting_needs_the_right_to_see_the_list(client, prod):
    user = get_user_model().objects.create_user("viewer", password="x", is_staff=True)
    client.force_login(user)
    assert client.get("/admin/provisioning/bootevent/export.csv").status_code == 403
    assert client.get("/admin/provisioning/nothing/export.csv").status_code == 404
    client.logout()
    assert client.get("/admin/provisioning/bootevent/export.csv").status_code == 302  # login
