"""Signed kernels and four eyes: a protected network boots only a kernel whose release
signature verifies, whatever path switches it, and on a four-eyes network a switch waits for
a second staff user."""

import secrets
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from provisioning.models import (
    ApiToken,
    BranchLink,
    Kernel,
    KernelChange,
    Network,
    PendingSwitch,
)  # fmt: skip
from provisioning.tests.signing import ReleaseKey
from provisioning.tests.test_publishing import BOUNDARY

pytestmark = pytest.mark.django_db

SIGNED = b"\x7fa signed kernel"
UNSIGNED = b"\x7fan unsigned kernel"


@pytest.fixture
def release(tmp_path, settings) -> ReleaseKey:
    return ReleaseKey.allowed(tmp_path, settings)


def _file(tmp_path: Path, name: str, content: bytes) -> Path:
    path = tmp_path / "files" / name
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(content)
    return path


@pytest.fixture
def kernels(tmp_path, prod, release, settings):
    """A signed and an unsigned kernel, registered the way import_kernel does; prod (which
    boots an unsigned kernel from before) now needs signed ones."""
    settings.ZOSBOOT_SIGNED_NETWORKS = ["prod"]
    signed = _file(tmp_path, "zero-os-signed.efi", SIGNED)
    sig = Path(f"{signed}.sig")
    sig.write_text(release.sign(signed))
    call_command("import_kernel", str(signed), "--signature", str(sig))
    call_command("import_kernel", str(_file(tmp_path, "zero-os-unsigned.efi", UNSIGNED)))
    return Kernel.objects.get(name="zero-os-signed.efi"), Kernel.objects.get(
        name="zero-os-unsigned.efi"
    )


def bearer(*scopes: str) -> dict:
    token = ApiToken.issue(f"ci-{secrets.token_hex(4)}", list(scopes))[1]
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def test_a_signature_is_checked_on_upload_and_its_signer_kept(kernels):
    signed, unsigned = kernels
    assert (signed.signer, signed.signature_label) == (
        "release@zosboot",
        "signed by release@zosboot",
    )
    assert unsigned.signature_label == "unsigned"


def test_an_unsigned_kernel_cannot_be_made_bootable_on_a_protected_network(
    client, admin_client, kernels, prod
):
    signed, unsigned = kernels
    before = prod.kernel
    # The v1 API.
    api = client.post("/api/v1/networks/prod/kernel", {"kernel": unsigned.name},
                      content_type="application/json", **bearer("networks"))  # fmt: skip
    assert api.status_code == 409
    assert "network prod boots only signed kernels" in api.json()["detail"]
    assert "carries no signature" in api.json()["detail"]
    # The admin's network form: an error on the field, not a crash.
    form = admin_client.post(
        f"/admin/provisioning/network/{prod.pk}/change/",
        {"slug": "prod", "name": prod.name, "active": "on", "kernel": unsigned.pk,
         "extra_args": "", "kernel_changes-TOTAL_FORMS": "0",
         "kernel_changes-INITIAL_FORMS": "0"},
    )  # fmt: skip
    assert form.status_code == 200 and b"boots only signed kernels" in form.content
    # The admin's promote action.
    promoted = admin_client.post(
        "/admin/provisioning/kernel/",
        {"action": "promote", "_selected_action": [unsigned.pk], "apply": "1",
         "networks": [prod.pk]}, follow=True,
    )  # fmt: skip
    assert b"boots only signed kernels" in promoted.content
    # import_kernel --network.
    with pytest.raises(CommandError, match="boots only signed kernels"):
        call_command("import_kernel", unsigned.file.path, "--network", "prod")
    # A branch link prod follows, moved by the legacy call.
    link, _ = BranchLink.point("zero-os-prod-latest.efi", signed)
    prod.follow_link(link)
    client.cookies["token"] = ApiToken.issue(f"ci-{secrets.token_hex(4)}", ["publish"])[1]
    moved = client.get(f"/api/symlink/zero-os-prod-latest.efi/{unsigned.name}")
    assert moved.status_code == 409 and b"it follows zero-os-prod-latest.efi" in moved.content
    assert BranchLink.objects.get(pk=link.pk).kernel == signed
    # And the network boots what it booted (then the signed build through its link).
    assert Network.objects.get(pk=prod.pk).current_kernel == signed
    assert before != unsigned


def test_a_signed_kernel_can_and_other_networks_are_free(client, kernels, prod):
    signed, unsigned = kernels
    api = client.post("/api/v1/networks/prod/kernel", {"kernel": signed.name},
                      content_type="application/json", **bearer("networks"))  # fmt: skip
    assert api.status_code == 200 and api.json()["kernel"] == signed.name
    test = client.post("/api/v1/networks/test/kernel", {"kernel": unsigned.name},
                       content_type="application/json", **bearer("networks"))  # fmt: skip
    assert test.status_code == 200  # not listed in ZOSBOOT_SIGNED_NETWORKS


def test_a_kernel_changed_after_signing_is_refused_at_the_switch(client, kernels):
    signed, _ = kernels
    Path(signed.file.path).write_bytes(SIGNED + b" and a backdoor")
    api = client.post("/api/v1/networks/prod/kernel", {"kernel": signed.name},
                      content_type="application/json", **bearer("networks"))  # fmt: skip
    assert api.status_code == 409 and "does not match the file" in api.json()["detail"]


def test_a_key_that_was_removed_no_longer_counts(client, kernels, settings, tmp_path):
    signed, _ = kernels
    Path(settings.ZOSBOOT_RELEASE_SIGNERS).write_text("")
    api = client.post("/api/v1/networks/prod/kernel", {"kernel": signed.name},
                      content_type="application/json", **bearer("networks"))  # fmt: skip
    assert api.status_code == 409 and "not by any allowed release signer" in api.json()["detail"]


def test_signed_links_need_signed_kernels(client, kernels, settings):
    settings.ZOSBOOT_SIGNED_LINKS = True
    signed, unsigned = kernels
    client.cookies["token"] = ApiToken.issue(f"ci-{secrets.token_hex(4)}", ["publish"])[1]
    assert client.get(f"/api/symlink/zero-os-dev.efi/{signed.name}").status_code == 200
    refused = client.get(f"/api/symlink/zero-os-dev.efi/{unsigned.name}")
    assert (
        refused.status_code == 409 and b"branch link zero-os-dev.efi boots only" in refused.content
    )


def _publish_signed(client, path: Path, signature: str, as_file: bool):
    """POST /api/kernel as curl sends `-F kernel=@FILE -F signature=@FILE.sig` (a file part)
    or `-F signature=<FILE.sig` (a text field)."""
    filename = f'; filename="{path.name}.sig"' if as_file else ""
    body = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="kernel"; '
        f'filename="{path.name}"\r\nContent-Type: application/octet-stream\r\n\r\n'
    ).encode() + path.read_bytes() + (
        f'\r\n--{BOUNDARY}\r\nContent-Disposition: form-data; name="signature"{filename}'
        f"\r\n\r\n{signature}\r\n--{BOUNDARY}--\r\n"
    ).encode()  # fmt: skip
    client.cookies["token"] = ApiToken.issue(f"ci-{secrets.token_hex(4)}", ["publish"])[1]
    return client.post("/api/kernel", data=body,
                       content_type=f"multipart/form-data; boundary={BOUNDARY}")  # fmt: skip


def test_a_wrong_signature_on_upload_stores_nothing(client, tmp_path, release):
    other = ReleaseKey.make(tmp_path / "other", "mallory@example.org")
    path = _file(tmp_path, "zero-os-evil.efi", b"\x7fevil")
    response = _publish_signed(client, path, other.sign(path), as_file=True)
    assert response.status_code == 400 and b"not by any allowed release signer" in response.content
    assert not Kernel.objects.filter(name="zero-os-evil.efi").exists()
    assert not (Path(tmp_path) / "kernels" / "zero-os-evil.efi").exists()


def test_the_legacy_publish_call_takes_a_signature_field(client, tmp_path, release, prod):
    path = _file(tmp_path, "zero-os-v9.efi", b"\x7fnine")
    response = _publish_signed(client, path, release.sign(path), as_file=False)
    assert response.status_code == 201, response.content
    kernel = Kernel.objects.get(name="zero-os-v9.efi")
    assert kernel.signer == "release@zosboot"
    prod.switch_kernel(kernel)
    # Anyone can check the download: the signature is served beside the kernel.
    sig = client.get("/kernel/zero-os-v9.efi.sig")
    assert sig.status_code == 200 and sig.content.decode() == kernel.signature
    assert sig["X-Zosboot-Signer"] == "release@zosboot"
    assert client.get("/kernel/zero-os-development-amd64.efi.sig").status_code == 404


def test_the_admin_upload_takes_a_signature_file(admin_client, tmp_path, release):
    from django.core.files.uploadedfile import SimpleUploadedFile

    path = _file(tmp_path, "zero-os-admin.efi", b"\x7fadmin")
    signature = release.sign(path).encode()
    bad = admin_client.post("/admin/provisioning/kernel/add/", {
        "name": "", "arch": "amd64", "notes": "",
        "file": SimpleUploadedFile("zero-os-admin.efi", b"\x7fadmin, changed"),
        "signature_file": SimpleUploadedFile("zero-os-admin.efi.sig", signature),
    })  # fmt: skip
    assert bad.status_code == 200 and b"does not match the file" in bad.content
    assert not Kernel.objects.exists()
    good = admin_client.post("/admin/provisioning/kernel/add/", {
        "name": "", "arch": "amd64", "notes": "",
        "file": SimpleUploadedFile("zero-os-admin.efi", b"\x7fadmin"),
        "signature_file": SimpleUploadedFile("zero-os-admin.efi.sig", signature),
    })  # fmt: skip
    assert good.status_code == 302, good.content[:3000]
    assert Kernel.objects.get().signer == "release@zosboot"


@pytest.fixture
def four_eyes(settings, prod, make_kernel, django_user_model):
    settings.ZOSBOOT_FOUR_EYES_NETWORKS = ["prod"]
    newer = make_kernel("zero-os-v2.efi", b"v2")
    first = django_user_model.objects.create_user("alice", password="x", is_staff=True,
                                                   is_superuser=True)  # fmt: skip
    second = django_user_model.objects.create_user("bob", password="x", is_staff=True,
                                                    is_superuser=True)  # fmt: skip
    return newer, first, second


def test_a_switch_on_a_four_eyes_network_waits_for_a_second_operator(client, prod, four_eyes):
    newer, alice, bob = four_eyes
    before = prod.kernel
    # Asked for in the admin by alice: nothing changes yet.
    client.force_login(alice)
    asked = client.post(
        f"/admin/provisioning/network/{prod.pk}/change/",
        {"slug": "prod", "name": prod.name, "active": "on", "kernel": newer.pk,
         "extra_args": "", "kernel_changes-TOTAL_FORMS": "0",
         "kernel_changes-INITIAL_FORMS": "0", "confirmed": "yes"}, follow=True,
    )  # fmt: skip
    assert b"needs a second operator" in asked.content
    assert Network.objects.get(pk=prod.pk).kernel == before
    pending = PendingSwitch.objects.get()
    assert b"kernel=zero-os-v2.efi" not in client.get("/ipxe/prod/1").content
    # alice cannot approve her own switch.
    own = client.post(
        "/admin/provisioning/pendingswitch/",
        {"action": "approve", "_selected_action": [pending.pk]},
        follow=True,
    )
    assert b"a second operator must approve it" in own.content
    assert Network.objects.get(pk=prod.pk).kernel == before
    # bob can; both names are in the audit trail.
    client.force_login(bob)
    client.post(
        "/admin/provisioning/pendingswitch/",
        {"action": "approve", "_selected_action": [pending.pk], "confirmed": "yes"},
    )
    assert Network.objects.get(pk=prod.pk).kernel == newer
    change = KernelChange.objects.filter(network=prod).latest("changed_at")
    assert (change.changed_by, change.approved_by) == (alice, bob)
    assert PendingSwitch.objects.get().state == PendingSwitch.State.APPROVED
    assert b"kernel=zero-os-v2.efi" in client.get("/ipxe/prod/1").content


def test_an_api_switch_on_a_four_eyes_network_is_a_202_and_can_be_rejected(client, prod, four_eyes):
    newer, alice, bob = four_eyes
    before = prod.kernel
    asked = client.post("/api/v1/networks/prod/kernel", {"kernel": newer.name},
                        content_type="application/json", **bearer("networks"))  # fmt: skip
    assert asked.status_code == 202 and "needs a second operator" in asked.json()["detail"]
    pending = PendingSwitch.objects.get(pk=asked.json()["pending"])
    assert pending.changed_via.startswith("API token")
    rollback = client.post("/api/v1/networks/prod/rollback", **bearer("networks"))
    assert rollback.status_code == 409  # nothing was switched yet: no previous kernel
    client.force_login(bob)
    client.post(
        "/admin/provisioning/pendingswitch/", {"action": "reject", "_selected_action": [pending.pk]}
    )
    assert PendingSwitch.objects.get().state == PendingSwitch.State.REJECTED
    assert Network.objects.get(pk=prod.pk).kernel == before
    again = client.post(
        "/admin/provisioning/pendingswitch/",
        {"action": "approve", "_selected_action": [pending.pk]},
        follow=True,
    )
    assert b"rejected already" in again.content
    assert Network.objects.get(pk=prod.pk).kernel == before


def test_approval_checks_the_signature_policy_again(client, prod, four_eyes, settings, release):
    newer, alice, bob = four_eyes
    settings.ZOSBOOT_SIGNED_NETWORKS = []
    asked = client.post("/api/v1/networks/prod/kernel", {"kernel": newer.name},
                        content_type="application/json", **bearer("networks"))  # fmt: skip
    assert asked.status_code == 202
    settings.ZOSBOOT_SIGNED_NETWORKS = ["prod"]  # the policy tightened in between
    client.force_login(bob)
    approved = client.post("/admin/provisioning/pendingswitch/",
                           {"action": "approve", "_selected_action": [asked.json()["pending"]],
                            "confirmed": "yes"},
                           follow=True)  # fmt: skip
    assert b"boots only signed kernels" in approved.content
    assert Network.objects.get(pk=prod.pk).kernel != newer
    assert PendingSwitch.objects.get().state == PendingSwitch.State.PENDING


def test_import_legacy_leaves_a_protected_network_as_it_was_and_says_why(
    tmp_path, settings, release, capsys
):
    from provisioning.tests.test_commands import _legacy_install

    settings.ZOSBOOT_SIGNED_NETWORKS = ["prod"]
    kernels, db_path = _legacy_install(tmp_path)
    call_command("import_legacy", "--kernel-dir", str(kernels), "--provision-db", str(db_path))
    out = capsys.readouterr()
    assert "Network prod left as it was: network prod boots only signed kernels" in (
        out.out + out.err
    )
    assert Network.objects.get(slug="prod").kernel is None
    assert Network.objects.get(slug="test").kernel.name == "zero-os-v3-b.efi"
