"""Sites, as the origin answers them: kernels by content address, scripts that follow the server
they came from, mirrors in every script and image, CDN offload, and what an edge is told."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from django.core.management import call_command
from django.test.utils import override_settings

from provisioning.models import BootEvent, Network

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.django_db


# --- /kernel/sha256/<hex> ----------------------------------------------------------------------


def test_a_kernel_is_served_forever_at_its_content_address(client, prod, kernel):
    response = client.get(f"/kernel/sha256/{kernel.sha256}?mac=52-54-00-ab-cd-ef")
    assert response.status_code == 200
    assert response.getvalue() == b"kernel bytes"
    assert response["Cache-Control"] == "public, max-age=31536000, immutable"
    assert response["ETag"] == f'"{kernel.sha256}"'
    assert response["X-Checksum-Sha256"] == kernel.sha256
    assert response["X-Zosboot-Kernel"] == kernel.name
    event = BootEvent.objects.get(kind="kernel")
    assert (event.kernel_name, event.mac) == (kernel.name, "52:54:00:ab:cd:ef")
    again = client.get(f"/kernel/sha256/{kernel.sha256}", HTTP_IF_NONE_MATCH=f'"{kernel.sha256}"')
    assert again.status_code == 304
    part = client.get(f"/kernel/sha256/{kernel.sha256}", HTTP_RANGE="bytes=0-5")
    assert (part.status_code, part.getvalue()) == (206, b"kernel")


def test_any_name_and_architecture_at_its_content_address(client, make_kernel):
    arm = make_kernel("zero-os-arm64.efi", b"arm bytes", arch="arm64")
    assert client.get(arm.content_path).getvalue() == b"arm bytes"


@pytest.mark.parametrize(
    "digest,status,said",
    [
        ("0" * 64, 404, b"no kernel has the sha256 " + b"0" * 64),
        ("A" * 64, 400, b"64 lowercase hex digits"),
        ("abc", 400, b"64 lowercase hex digits"),
        ("g" * 64, 400, b"64 lowercase hex digits"),
    ],
)
def test_unknown_or_malformed_content_addresses_are_said_to_the_console(
    client, kernel, digest, status, said
):
    response = client.get(f"/kernel/sha256/{digest}")
    assert response.status_code == status
    assert response.content.startswith(b"#!ipxe\n") and said in response.content
    assert "immutable" not in response.get("Cache-Control", "")


def test_pointer_urls_keep_working_and_stay_uncached(client, prod, kernel):
    for path in ("/kernel/net/prod.efi", f"/kernel/{kernel.name}"):
        response = client.get(path)
        assert response.getvalue() == b"kernel bytes"
        assert "no-cache" in response["Cache-Control"]


# --- scripts follow the server they came from -------------------------------------------------


def test_the_boot_script_names_its_kernel_by_content_address_relative_to_itself(client, prod):
    script = client.get("/ipxe/prod/1234").content.decode()
    assert f"set zos_source0 /kernel/sha256/{prod.kernel.sha256}\n" in script
    assert "http" not in script.split(":kernel_amd64", 1)[1].split("kernel_chosen", 1)[0]
    assert "zos_source1" not in script


def test_a_switch_between_script_and_download_cannot_change_the_bytes(
    client, prod, kernel, make_kernel
):
    script = client.get("/ipxe/prod/1234").content.decode()
    prod.switch_kernel(make_kernel("zero-os-next.efi", b"next bytes"))
    address = script.split("set zos_source0 ", 1)[1].split("\n", 1)[0]
    assert client.get(address).getvalue() == b"kernel bytes"  # what this script named


def test_mirrors_are_tried_after_the_server_the_script_came_from(client, prod, settings):
    settings.ZOSBOOT_MIRRORS = ["http://edge1.example.org", "https://cdn.example.org"]
    script = client.get("/ipxe/prod/1234").content.decode()
    path = prod.kernel.content_path
    assert (
        f"set zos_source0 {path}\n"
        f"set zos_source1 http://edge1.example.org{path}\n"
        f"set zos_source2 https://cdn.example.org{path}\n"
    ) in script
    assert "nor from its mirrors" in script
    # An https mirror needs a right clock.
    assert "ntp pool.ntp.org" in script


def test_the_provisioning_chain_tries_each_mirror(client, settings, db):
    settings.ZOSBOOT_MIRRORS = ["http://edge1.example.org"]
    from provisioning.scripts import render_provision_chain_script

    script = render_provision_chain_script("http://boot.example.org")
    assert "chain --timeout 60000 --autofree http://boot.example.org/provision/" in script
    assert "chain --timeout 60000 --autofree http://edge1.example.org/provision/" in script
    assert "boot service or its mirrors" in script


def test_waiting_nodes_ask_again_where_they_asked(client, db):
    script = client.get("/provision/52-54-00-00-00-09").content.decode()
    assert "chain --replace --autofree /provision/52-54-00-00-00-09 ||" in script


# --- an edge asking, CDN offload ---------------------------------------------------------------


def test_an_edge_is_pointed_at_the_content_address_and_gets_bytes_there(client, prod, kernel):
    response = client.get("/kernel/net/prod.efi?mac=525400000001", HTTP_X_ZOSBOOT_EDGE="1")
    assert response.status_code == 302
    assert response["Location"] == kernel.content_path  # on the edge itself
    assert response["X-Checksum-Sha256"] == kernel.sha256
    assert BootEvent.objects.get(kind="kernel").mac == "52:54:00:00:00:01"
    fill = client.get(kernel.content_path, HTTP_X_ZOSBOOT_EDGE="1")
    assert fill.status_code == 200 and fill.getvalue() == b"kernel bytes"


def test_cdn_offload_decides_and_records_here_and_sends_the_bytes_from_the_cdn(
    client, prod, kernel, settings
):
    settings.ZOSBOOT_KERNEL_REDIRECT = "https://cdn.example.org"
    for path in ("/kernel/net/prod.efi", f"/kernel/{kernel.name}", kernel.content_path):
        response = client.get(path + "?mac=52:54:00:00:00:02")
        assert response.status_code == 302
        assert response["Location"] == f"https://cdn.example.org{kernel.content_path}"
    assert BootEvent.objects.filter(kind="kernel").count() == 3
    # What fills the CDN (or an edge) from here gets the bytes.
    fill = client.get(kernel.content_path, HTTP_X_ZOSBOOT_EDGE="1")
    assert fill.status_code == 200 and fill.getvalue() == b"kernel bytes"
    # Unknown kernels are still refused here, not sent to the CDN.
    assert client.get("/kernel/sha256/" + "1" * 64).status_code == 404


# --- what edges and operators read ---------------------------------------------------------------


def test_current_kernels_lists_what_active_networks_boot(client, prod, kernel, make_kernel):
    arm = make_kernel("zero-os-arm64.efi", b"arm bytes", arch="arm64")
    prod.switch_kernel(arm, arch="arm64")
    Network.objects.filter(slug="qa").update(active=False)
    text = client.get("/kernels/current.txt").content.decode()
    assert text.splitlines() == [  # by name
        f"{arm.sha256} {arm.size} {arm.name} prod:arm64",
        f"{kernel.sha256} {kernel.size} {kernel.name} prod:amd64",
    ]


def test_edge_config_is_what_setup_edge_sh_runs(settings):
    from io import StringIO

    out = StringIO()
    call_command(
        "edge_config", "--origin", "http://127.0.0.1:8000", "--listen", "127.0.0.1:8001",
        "--edge-dir", "/srv/edge", "--cache-bytes", "1000", "--stale-hours", "5", stdout=out,
    )  # fmt: skip
    shell = subprocess.run(
        ["bash", str(REPO / "setup" / "edge.sh"), "--config"],
        env={
            "PATH": "/usr/bin:/bin",
            "ZOSBOOT_EDGE_ORIGIN": "http://127.0.0.1:8000",
            "ZOSBOOT_EDGE_BIND": "127.0.0.1:8001",
            "ZOSBOOT_EDGE_DIR": "/srv/edge",
            "ZOSBOOT_EDGE_CACHE_BYTES": "1000",
            "ZOSBOOT_EDGE_STALE_HOURS": "5",
        },
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert out.getvalue() == shell.stdout
    config = shell.stdout
    assert "proxy_cache_key $uri;" in config  # ?mac= never splits the kernel cache
    assert "proxy_cache_lock on;" in config
    assert "inactive=5h" in config and "max_size=1000" in config
    assert "location ~ ^/(ipxe|provision|kernel)/" in config


@pytest.mark.parametrize(
    "origin,said",
    [
        ("", "set ZOSBOOT_EDGE_ORIGIN"),
        ("ftp://x", "is not a base URL"),
        ("http://x/path", "is not a base URL"),
        ("http://x;y", "is not a base URL"),
    ],
)
def test_setup_edge_sh_refuses_a_wrong_origin_in_one_line(origin, said):
    result = subprocess.run(
        ["bash", str(REPO / "setup" / "edge.sh"), "--config"],
        env={"PATH": "/usr/bin:/bin", "ZOSBOOT_EDGE_ORIGIN": origin},
        capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 1
    assert said in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_the_origin_believes_only_the_edges_it_names(settings):
    from provisioning import frontserver

    settings.ZOSBOOT_REAL_IP_FROM = ["10.1.2.3", "10.9.0.0/16"]
    config = frontserver.site_config("127.0.0.1:80", "unix:/run/zosboot.sock")
    assert "set_real_ip_from 10.1.2.3;" in config and "set_real_ip_from 10.9.0.0/16;" in config
    assert "real_ip_header X-Forwarded-For;" in config
    settings.ZOSBOOT_REAL_IP_FROM = []
    assert "set_real_ip_from" not in frontserver.site_config("127.0.0.1:80", "unix:/x.sock")


@pytest.mark.parametrize(
    "name,value,check",
    [
        ("ZOSBOOT_MIRRORS", ["ftp://mirror"], "provisioning.E005"),
        ("ZOSBOOT_MIRRORS", ["http://mirror/x?y=1"], "provisioning.E005"),
        ("ZOSBOOT_MIRRORS", ["http://mir${x}ror"], "provisioning.E005"),
        ("ZOSBOOT_KERNEL_REDIRECT", "cdn.example.org", "provisioning.E006"),
    ],
)
def test_a_wrong_mirror_or_redirect_is_a_check_error(name, value, check):
    from django.core.management.base import SystemCheckError

    with override_settings(**{name: value}), pytest.raises(SystemCheckError, match=check):
        call_command("check")


def test_relative_urls_in_scripts_carry_no_colon(client, prod):
    """The iPXE of firmware ROMs from 2019 reads everything before the first colon of a URL as
    its scheme, even in a relative one: what resolves against the script's own URL never has
    one (the MAC goes in its hyphen form)."""
    from provisioning.models import Farm, Node

    farm = Farm.objects.create(farmer_id=5)
    Node.objects.create(mac="52:54:00:00:00:05", farm=farm, network=prod, enabled=False)
    scripts = [
        client.get("/ipxe/prod/1234").content.decode(),
        client.get("/provision/52:54:00:00:00:06").content.decode(),  # waiting
        client.get("/provision/52:54:00:00:00:05").content.decode(),  # refused
    ]
    for script in scripts:
        for line in script.splitlines():
            for word in line.split():
                if word.startswith("/") and not word.startswith("//"):
                    assert ":" not in word.split("${", 1)[0], line
    assert "?mac=${net${zos_nic}/mac:hexhyp}" in scripts[0]
