"""The v1 JSON API: tokens and scopes, every operation, the audit trail it leaves, and its
OpenAPI document."""

from __future__ import annotations

import hashlib

import pytest

from provisioning.models import (
    ApiToken,
    BootEvent,
    BranchLink,
    Farm,
    FleetChange,
    Kernel,
    KernelChange,
    Node,
)

pytestmark = pytest.mark.django_db

BUILD = "zero-os-development-generic-0123456789.efi"


def bearer(*scopes: str) -> dict[str, str]:
    name = "token-" + "-".join(scopes or ("read",))
    _, secret = ApiToken.issue(name, list(scopes) or ["nodes"])
    return {"HTTP_AUTHORIZATION": f"Bearer {secret}"}


@pytest.fixture
def everything():
    return bearer("publish", "networks", "nodes")


def test_the_openapi_document_is_served_and_names_every_operation(client):
    schema = client.get("/api/v1/openapi.json").json()
    assert schema["openapi"].startswith("3.1")
    expected = {"/api/v1/kernels", "/api/v1/networks/{slug}/kernel", "/api/v1/boot-events",
                "/api/v1/nodes/{mac}/approve", "/api/v1/kernels/{name}/nodes"}  # fmt: skip
    assert expected <= set(schema["paths"])
    security = schema["components"]["securitySchemes"]
    assert {scheme["scheme"] for scheme in security.values()} == {"bearer"}


def test_no_token_is_401_and_a_token_without_the_scope_is_403(client, prod):
    assert client.get("/api/v1/networks").status_code == 401
    reader = bearer("nodes")
    assert client.get("/api/v1/networks", **reader).status_code == 200
    response = client.post(
        "/api/v1/networks/prod/rollback", content_type="application/json", **reader
    )
    assert response.status_code == 403
    assert "does not have the networks scope" in response.json()["detail"]


def test_uploading_with_the_expected_sha256(client, everything, settings):
    content = b"a build"
    digest = hashlib.sha256(content).hexdigest()

    def upload(sha: str, data: bytes = content):
        from django.core.files.uploadedfile import SimpleUploadedFile

        return client.post(
            "/api/v1/kernels", {"kernel": SimpleUploadedFile(BUILD, data), "sha256": sha},
            **everything,
        )  # fmt: skip

    wrong = upload("0" * 64)
    assert wrong.status_code == 400 and digest in wrong.json()["detail"]
    assert not Kernel.objects.exists()
    created = upload(digest)
    assert created.status_code == 201 and created.json()["sha256"] == digest
    assert upload(digest).status_code == 200
    other = b"another build"
    assert upload(hashlib.sha256(other).hexdigest(), other).status_code == 409
    assert (settings.ZOSBOOT_KERNELS_DIR / BUILD).read_bytes() == content


def test_a_kernel_in_use_cannot_be_deleted_and_an_unused_one_can(
    client, prod, kernel, make_kernel, everything
):
    response = client.delete(f"/api/v1/kernels/{kernel.name}", **everything)
    assert response.status_code == 409 and "prod" in response.json()["detail"]
    spare = make_kernel("spare.efi", b"s")
    assert client.delete(f"/api/v1/kernels/{spare.name}", **everything).status_code == 204
    assert not Kernel.objects.filter(name="spare.efi").exists()


def test_the_kernel_a_network_would_roll_back_to_is_kept_unless_forced(
    client, prod, kernel, make_kernel, everything
):
    prod.switch_kernel(make_kernel("zero-os-v2.efi", b"v2"))
    refused = client.delete(f"/api/v1/kernels/{kernel.name}", **everything)
    assert refused.status_code == 409 and "prod would roll back to" in refused.json()["detail"]
    forced = client.delete(f"/api/v1/kernels/{kernel.name}?force=true", **everything)
    assert forced.status_code == 204 and not Kernel.objects.filter(pk=kernel.pk).exists()


def test_a_switch_through_the_api_is_audited_like_one_in_the_admin(client, prod, make_kernel):
    newer = make_kernel("zero-os-v2.efi", b"v2")
    token = bearer("networks")
    response = client.post(
        "/api/v1/networks/prod/kernel", {"kernel": newer.name}, content_type="application/json",
        **token,
    )  # fmt: skip
    assert response.status_code == 200 and response.json()["kernel"] == newer.name
    change = KernelChange.objects.filter(network=prod).order_by("-changed_at", "-pk").first()
    assert (change.new_name, change.changed_via, change.changed_by) == (
        newer.name,
        "API token token-networks",
        None,
    )
    trail = client.get("/api/v1/networks/prod/changes", **token).json()
    assert trail[0]["changed_by"] == "API token token-networks"
    assert b"kernel=zero-os-v2.efi" in client.get("/ipxe/prod/1").content
    rolled = client.post("/api/v1/networks/prod/rollback", content_type="application/json", **token)
    assert rolled.json()["kernel"] == "zero-os-development-amd64.efi"
    # Back to any entry of the trail by its id, not only the one before.
    to_v2 = next(c["id"] for c in trail if c["new"] == newer.name)
    again = client.post(f"/api/v1/networks/prod/rollback?to={to_v2}", **token)
    assert again.status_code == 200 and again.json()["kernel"] == newer.name
    missing = client.post("/api/v1/networks/prod/rollback?to=999999", **token)
    assert missing.status_code == 409 and "no change 999999" in missing.json()["detail"]


def test_a_network_can_follow_a_link_through_the_api(client, prod, kernel, everything):
    put = client.put(
        "/api/v1/links/dev-latest.efi", {"kernel": kernel.name}, content_type="application/json",
        **everything,
    )  # fmt: skip
    assert put.json() == {"name": "dev-latest.efi", "kernel": kernel.name}
    response = client.post(
        "/api/v1/networks/prod/kernel", {"link": "dev-latest.efi"},
        content_type="application/json", **everything,
    )  # fmt: skip
    assert response.json()["link"] == "dev-latest.efi"
    assert (
        BranchLink.objects.get(name="dev-latest.efi")
        .changes.get()
        .changed_via.startswith("API token")
    )


def test_a_link_rollback_its_followers_cannot_boot_is_a_409_that_says_why(
    client, prod, kernel, make_kernel, everything
):
    arm = make_kernel("zero-os-arm64.efi", b"arm", arch="arm64")
    BranchLink.point("dev-latest.efi", arm)  # before any network followed it
    link, _ = BranchLink.point("dev-latest.efi", kernel)
    prod.follow_link(link)
    rolled = client.post("/api/v1/links/dev-latest.efi/rollback", **everything)
    assert rolled.status_code == 409, rolled.content
    assert rolled.json()["detail"] == (
        "prod follows dev-latest.efi on amd64 machines; zero-os-arm64.efi is an arm64 kernel"
    )
    assert BranchLink.objects.get(name="dev-latest.efi").kernel == kernel


def test_farms_and_nodes_from_creation_to_approval_and_disabling(client, prod, everything):
    farm = client.post(
        "/api/v1/farms", {"farmer_id": 77, "name": "Seventy-seven"},
        content_type="application/json", **everything,
    )  # fmt: skip
    assert farm.status_code == 201
    Node.objects.create(mac="52:54:00:00:00:77")  # discovered, waiting
    pending = client.get("/api/v1/nodes?status=pending", **everything).json()
    assert [n["mac"] for n in pending] == ["52:54:00:00:00:77"]
    approved = client.post(
        "/api/v1/nodes/52-54-00-00-00-77/approve", {"farm": 77, "network": "prod"},
        content_type="application/json", **everything,
    )  # fmt: skip
    assert approved.json()["status"] == "enabled" and approved.json()["farm"] == 77
    disabled = client.post(
        "/api/v1/nodes/525400000077/disable", content_type="application/json", **everything
    )
    assert disabled.json()["status"] == "disabled"
    created = client.post(
        "/api/v1/nodes", {"mac": "52:54:00:AA:00:01", "farm": 77, "network": "prod"},
        content_type="application/json", **everything,
    )  # fmt: skip
    assert created.status_code == 201 and created.json()["mac"] == "52:54:00:aa:00:01"
    assert Farm.objects.get(farmer_id=77).nodes.count() == 2
    # Every change is in the fleet's trail, named by the token that made it.
    trail = [(c.farmer_id, c.mac, c.what, c.changed_via) for c in FleetChange.objects.reverse()]
    via = "API token token-publish-networks-nodes"
    assert trail == [
        (77, "", "created", via),
        (77, "52:54:00:00:00:77", "approved: farm 77, network prod", via),
        (77, "52:54:00:00:00:77", "disabled", via),
        (77, "52:54:00:aa:00:01", "created", via),
    ]


def test_boot_history_filters_and_which_nodes_run_a_kernel(client, prod, kernel, everything):
    node = Node.objects.create(mac="52:54:00:00:00:01")
    BootEvent.objects.create(kind="kernel", mac=node.mac, client_ip="192.0.2.1",
                             kernel_name=kernel.name, farmer_id=9)  # fmt: skip
    BootEvent.objects.create(kind="script", mac="52:54:00:00:00:02", farmer_id=10)
    events = client.get("/api/v1/boot-events?farm=9", **everything).json()
    assert [e["mac"] for e in events] == [node.mac]
    # Who runs what comes from the machines' own requests (provisioning/tests/test_running.py).
    client.get(f"/kernel/net/prod.efi?mac={node.mac}", REMOTE_ADDR="192.0.2.1")
    running = client.get(f"/api/v1/kernels/{kernel.name}/nodes", **everything).json()
    assert [(r["mac"], r["client_ip"]) for r in running] == [(node.mac, "192.0.2.1")]
    assert client.get("/api/v1/boot-events?node=not-a-mac", **everything).status_code == 400


def test_boot_history_times_with_any_offset_are_compared_in_utc(client, everything):
    BootEvent.objects.create(kind="script", mac="52:54:00:00:00:01")
    # +20:51 is valid ISO 8601 but beyond what PostgreSQL takes; in UTC it is the day before.
    since = "/api/v1/boot-events?since=2000-01-02T08:00:00%2B20:51"
    assert [e["mac"] for e in client.get(since, **everything).json()] == ["52:54:00:00:00:01"]
    future = "/api/v1/boot-events?since=9999-12-31T23:30:00-08:00"  # past year 9999 in UTC
    assert client.get(future, **everything).status_code == 422


@pytest.mark.parametrize(
    "method, path, body",
    [("post", "/api/v1/farms", {"farmer_id": 5, "name": "a\x00b"}),
     ("post", "/api/v1/farms", {"farmer_id": 5, "notes": "a\x00b"}),
     ("patch", "/api/v1/farms/7", {"name": "a\x00b"})],
)  # fmt: skip
def test_free_text_with_a_nul_character_is_refused_on_every_database(
    client, everything, method, path, body
):
    Farm.objects.create(farmer_id=7)
    answer = getattr(client, method)(path, body, content_type="application/json", **everything)
    assert answer.status_code == 422
    searched = client.get("/api/v1/boot-events?kernel=a%00b", **everything)
    assert searched.status_code == 422
