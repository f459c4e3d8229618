"""Two instances, one truth: two stacks as `make run` starts them (nginx + gunicorn each, on
their own port) on one PostgreSQL database and one kernel store, each with its own data
directory, image cache and metrics, as the README's production layout has them."""

from __future__ import annotations

import hashlib
import json
import re
import secrets

import pytest

from provisioning.tests.postgres import a_server, scratch_database
from provisioning.tests.stack import running_stack

pytestmark = pytest.mark.stack

# Both instances write the address of the load balancer in front of them into scripts; the
# tests never contact it.
PUBLIC_URL = "http://bootstrap.example.org"


@pytest.fixture(scope="module")
def shared_database():
    """A database of their own on the run's PostgreSQL, or on a throwaway server."""
    with a_server() as server, scratch_database(server, "zosboot_instances") as database:
        yield database


@pytest.fixture(scope="module")
def instances(tmp_path_factory, ipxe_dir, shared_database):
    root = tmp_path_factory.mktemp("instances")
    shared = {
        "DATABASE_URL": shared_database,
        "ZOSBOOT_KERNELS_DIR": str(root / "kernels"),
        "ZOSBOOT_PUBLIC_URL": PUBLIC_URL,
    }
    # One after the other: the first start applies the migrations, the second finds them done.
    with (
        running_stack(root / "a", ipxe_dir, **shared) as a,
        running_stack(root / "b", ipxe_dir, **shared) as b,
    ):
        first = root / "zero-os-first.efi"
        first.write_bytes(b"MZ first kernel\n" + bytes(64 * 1024))
        first.chmod(0o644)
        a.manage("import_kernel", str(first), "--network", "prod")
        yield a, b


def multipart(boundary: str, fields: dict[str, str], filename: str, content: bytes) -> bytes:
    """A form with text fields and one file, named `kernel`, as curl -F sends it."""
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n{value}\r\n'
        for key, value in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="kernel"; filename="{filename}"'
        "\r\nContent-Type: application/octet-stream\r\n\r\n"
    )
    return "".join(parts).encode() + content + f"\r\n--{boundary}--\r\n".encode()


def publish_and_switch(stack, name: str, content: bytes) -> None:
    """What the build pipeline does: upload a kernel with its sha256, point prod at it (v1 API)."""
    scopes = ["--scope", "publish", "--scope", "networks"]
    printed = stack.manage("create_api_token", f"ci-{secrets.token_hex(4)}", *scopes)
    auth = {"Authorization": f"Bearer {printed.strip().splitlines()[-1]}"}
    boundary = secrets.token_hex(16)
    body = multipart(boundary, {"sha256": hashlib.sha256(content).hexdigest()}, name, content)
    status, _, answer = stack.request(
        "POST", "/api/v1/kernels", body,
        {**auth, "Content-Type": f"multipart/form-data; boundary={boundary}"},
    )  # fmt: skip
    assert status == 201, answer
    status, _, answer = stack.request(
        "POST", "/api/v1/networks/prod/kernel", json.dumps({"kernel": name}).encode(),
        {**auth, "Content-Type": "application/json"},
    )  # fmt: skip
    assert status == 200, answer


def test_a_kernel_switch_through_one_instance_is_served_by_the_other_at_the_next_request(
    instances,
):
    a, b = instances
    # Every worker of B keeps the current kernel in memory before the switch.
    before = [b.get("/ipxe/prod/1")[2] for _ in range(6)]
    assert all(b"kernel=zero-os-first.efi" in script for script in before)
    assert b.get("/kernel/net/prod.efi")[2].startswith(b"MZ first kernel")

    newer = b"MZ newer kernel\n" + secrets.token_bytes(32 * 1024)
    publish_and_switch(a, "zero-os-newer.efi", newer)

    for _ in range(6):  # whichever worker of B answers
        status, _, script = b.get("/ipxe/prod/1")
        assert status == 200 and b"kernel=zero-os-newer.efi" in script, script
    # B's nginx sends the file A's worker wrote into the shared store.
    status, headers, kernel = b.get("/kernel/net/prod.efi")
    assert status == 200 and kernel == newer
    assert headers["X-Checksum-Sha256"] == hashlib.sha256(newer).hexdigest()


@pytest.mark.parametrize(
    "url", ["/iso/prod/1234", "/usb/prod/1234", "/uefimg/prod/1234", "/uefi/prod/1234",
            "/krn/prod/1234/console=ttyS0", "/uefi-provision"],
)  # fmt: skip
def test_each_instance_builds_its_own_image_and_they_are_byte_identical(instances, url):
    a, b = instances
    status_a, headers_a, image_a = a.get(url)
    status_b, headers_b, image_b = b.get(url)
    assert status_a == status_b == 200
    # Each built the image into its own cache, neither served the other's file.
    assert headers_a["X-Zosboot-Cache"] == headers_b["X-Zosboot-Cache"] == "miss"
    assert image_a == image_b
    assert headers_a["X-Checksum-Sha256"] == headers_b["X-Checksum-Sha256"]
    assert headers_a["X-Checksum-Sha256"] == hashlib.sha256(image_a).hexdigest()
    # And each serves its own copy from then on.
    assert a.get(url)[1]["X-Zosboot-Cache"] == b.get(url)[1]["X-Zosboot-Cache"] == "hit"


def scripts_served(stack) -> float:
    status, _, body = stack.get("/metrics")
    assert status == 200
    found = re.search(
        rb'^zosboot_scripts_total\{network="prod",outcome="served"\} (\S+)$', body, re.M
    )
    return float(found.group(1)) if found else 0.0


def test_each_instance_counts_its_own_requests(instances):
    a, b = instances
    a_before, b_before = scripts_served(a), scripts_served(b)
    assert a.get("/ipxe/prod/4321")[0] == 200
    assert scripts_served(a) == a_before + 1
    assert scripts_served(b) == b_before
    for _ in range(3):
        assert b.get("/ipxe/prod/4321")[0] == 200
    assert scripts_served(a) == a_before + 1
    assert scripts_served(b) == b_before + 3
