"""Kernels per architecture: a network points at one kernel for amd64 machines and one for
arm64 machines, each switched, audited and rolled back on its own; one boot script serves both
and picks by iPXE's `${buildarch}`."""

from __future__ import annotations

import hashlib
import re

import pytest
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command

from provisioning.kernels import register
from provisioning.models import (
    ApiToken,
    Arch,
    BranchLink,
    Farm,
    Kernel,
    KernelChange,
    Network,
    Node,
    detect_arch,
)
from provisioning.scripts import (
    render_boot_script,
    render_provision_chain_script,
    resolve_target,
)

pytestmark = pytest.mark.django_db


def arm64_image(tag: bytes = b"") -> bytes:
    """The start of an arm64 Linux Image: "MZ" (EFI stub), magic "ARMd" at 0x38."""
    head = bytearray(0x240)
    head[0:2] = b"MZ"
    head[0x38:0x3C] = b"ARMd"
    return bytes(head) + tag


def x86_image(tag: bytes = b"") -> bytes:
    """The start of an x86 bzImage: "MZ" (EFI stub), "HdrS" at 0x202."""
    head = bytearray(0x240)
    head[0:2] = b"MZ"
    head[0x202:0x206] = b"HdrS"
    return bytes(head) + tag


@pytest.fixture
def arm_kernel(db):
    kernel = Kernel(name="zero-os-development-arm64.efi", arch=Arch.ARM64)
    kernel.file.save(kernel.name, ContentFile(arm64_image(b"v1")), save=False)
    kernel.save()
    return kernel


def make_arm(name: str, tag: bytes) -> Kernel:
    kernel = Kernel(name=name, arch=Arch.ARM64)
    kernel.file.save(name, ContentFile(arm64_image(tag)), save=False)
    kernel.save()
    return kernel


@pytest.fixture
def both(prod, arm_kernel):
    prod.switch_kernel(arm_kernel, arch=Arch.ARM64)
    return prod


# --- what a file is ------------------------------------------------------------------------


def test_the_header_says_the_architecture():
    assert detect_arch(arm64_image()) == Arch.ARM64
    assert detect_arch(x86_image()) == Arch.AMD64
    assert detect_arch(b"MZ kernel") is None


def test_registering_takes_the_architecture_from_the_header(tmp_path):
    source = tmp_path / "zero-os-arm64.efi"
    source.write_bytes(arm64_image())
    kernel, _ = register(source)
    assert kernel.arch == Arch.ARM64
    unknown = tmp_path / "zero-os-unknown.efi"
    unknown.write_bytes(b"MZ kernel")
    assert register(unknown)[0].arch == Arch.AMD64  # the default


def test_a_header_that_says_another_architecture_is_refused(tmp_path):
    source = tmp_path / "zero-os-x86.efi"
    source.write_bytes(x86_image())
    with pytest.raises(ValidationError) as refused:
        register(source, arch="arm64")
    assert refused.value.messages == ["zero-os-x86.efi is an amd64 kernel (its header says so), "
                                      "not arm64"]  # fmt: skip
    assert not Kernel.objects.exists()


# --- the pointers --------------------------------------------------------------------------


def test_each_architecture_has_its_own_pointer_and_audit(prod, kernel, arm_kernel):
    change = prod.switch_kernel(arm_kernel, note="first arm", arch="arm64")
    assert change.arch == "arm64" and change.new == arm_kernel and change.previous is None
    prod.refresh_from_db()
    assert (prod.current_kernel, prod.current_arm64_kernel) == (kernel, arm_kernel)
    assert str(change) == "prod (arm64): - -> zero-os-development-arm64.efi"
    # The amd64 history is untouched by the arm64 switch.
    assert prod.kernel_changes.filter(arch="amd64").count() == 1
    assert prod.rollback_target("amd64") is None


def test_a_kernel_of_the_other_architecture_is_refused_with_a_clear_message(
    prod, kernel, arm_kernel
):
    with pytest.raises(ValidationError) as refused:
        prod.switch_kernel(kernel, arch="arm64")
    assert refused.value.messages == [
        "zero-os-development-amd64.efi is an amd64 kernel; arm64 machines cannot boot it"
    ]
    with pytest.raises(ValidationError):
        prod.switch_kernel(arm_kernel)  # the amd64 pointer
    assert KernelChange.objects.filter(arch="arm64").count() == 0


def test_a_kernel_recorded_as_amd64_whose_file_is_arm64_is_refused_too(prod, make_kernel):
    mislabelled = make_kernel("zero-os-odd.efi", arm64_image())  # recorded amd64 (the default)
    with pytest.raises(ValidationError, match="is an arm64 kernel"):
        prod.switch_kernel(mislabelled)


def test_rollback_and_restore_work_per_architecture(both, arm_kernel, make_kernel):
    newer = make_arm("zero-os-arm64-v2.efi", b"v2")
    amd_newer = make_kernel("zero-os-v2.efi", b"v2")
    both.switch_kernel(newer, arch="arm64")
    both.switch_kernel(amd_newer)
    change = both.rollback_kernel(arch="arm64")
    assert (change.arch, change.new) == ("arm64", arm_kernel)
    both.refresh_from_db()
    assert (both.current_kernel, both.current_arm64_kernel) == (amd_newer, arm_kernel)
    # Restoring an arm64 entry switches the arm64 pointer, whatever the amd64 one does.
    entry = KernelChange.objects.get(arch="arm64", new=newer)
    both.restore(entry)
    both.refresh_from_db()
    assert (both.current_kernel, both.current_arm64_kernel) == (amd_newer, newer)
    with pytest.raises(KernelChange.NoPrevious, match="no previous arm64 kernel"):
        Network.objects.create(slug="x", name="X").rollback_kernel(arch="arm64")


def test_a_network_follows_a_link_on_arm64_and_the_link_keeps_to_arm64_builds(prod, arm_kernel):
    link, _ = BranchLink.point("zero-os-development-arm64-generic.efi", arm_kernel)
    prod.follow_link(link, arch="arm64")
    assert Network.objects.get(pk=prod.pk).current_arm64_kernel == arm_kernel
    newer = make_arm("zero-os-arm64-v2.efi", b"v2")
    BranchLink.point(link.name, newer)
    assert Network.objects.get(pk=prod.pk).current_arm64_kernel == newer
    amd = Kernel.objects.get(name="zero-os-development-amd64.efi")
    with pytest.raises(ValidationError, match="prod follows .* on arm64 machines"):
        BranchLink.point(link.name, amd)


def test_a_kernel_an_arm64_pointer_would_roll_back_to_is_named(both):
    newer = make_arm("zero-os-arm64-v2.efi", b"v2")
    both.switch_kernel(newer, arch="arm64")
    old = Kernel.objects.get(name="zero-os-development-arm64.efi")
    assert Network.objects.all().rolling_back_to(old) == [both]


# --- the kernel URLs -------------------------------------------------------------------------


def test_each_architecture_has_its_network_kernel_url(client, both):
    amd = client.get("/kernel/net/prod.efi")
    assert amd["X-Zosboot-Kernel"] == "zero-os-development-amd64.efi"
    assert client.get("/kernel/net/amd64/prod.efi")["X-Zosboot-Kernel"] == amd["X-Zosboot-Kernel"]
    arm = client.get("/kernel/net/arm64/prod.efi?mac=52:54:00:12:34:56")
    assert arm.status_code == 200
    assert arm["X-Zosboot-Kernel"] == "zero-os-development-arm64.efi"
    assert b"".join(arm.streaming_content) == arm64_image(b"v1")
    assert client.get("/kernel/net/riscv64/prod.efi").status_code == 404


def test_a_network_without_an_arm64_kernel_says_so_at_its_arm64_url(client, prod):
    response = client.get("/kernel/net/arm64/prod.efi")
    assert response.status_code == 503
    assert b"network prod has no arm64 kernel assigned yet" in response.content


# --- one script, both architectures -------------------------------------------------------


def test_the_script_picks_the_kernel_by_buildarch(client, both):
    script = client.get("/ipxe/prod/1234").content.decode()
    assert "# network=prod farm=1234 kernel=zero-os-development-amd64.efi " \
           "arm64-kernel=zero-os-development-arm64.efi\n" in script  # fmt: skip
    assert "iseq ${buildarch} x86_64 && set zos_arch amd64 ||" in script
    assert "iseq ${zos_arch} amd64 && goto kernel_amd64 ||" in script
    assert "iseq ${zos_arch} arm64 && goto kernel_arm64 ||" in script
    arm = script.split(":kernel_arm64\n", 1)[1].split("goto kernel_chosen", 1)[0]
    arm64 = Kernel.objects.get(name="zero-os-development-arm64.efi")
    assert arm == (
        "set zos_kernel zero-os-development-arm64.efi\n"
        f"set zos_source0 /kernel/sha256/{arm64.sha256}\n"
    )
    # The same command line for both; the MAC and the boot's token on whichever URL was picked.
    assert re.search(
        r"--name zos \$\{zos_source\$\{zos_src\}\}\?mac=\$\{net\$\{zos_nic\}/mac:hexhyp\}"
        r"&boot=[0-9a-f.]+ nomodeset version=v3 runmode=prod panic=7200 farmer_id=1234 && "
        r"goto start \|\|",
        script,
    )


def test_a_script_for_both_architectures_golden(both, settings, monkeypatch):
    from provisioning import tickets
    from provisioning.tests.test_scripts import _golden

    monkeypatch.setattr(tickets, "issue", lambda *args, **kwargs: "TOKEN")
    Farm.objects.create(farmer_id=1234, name="Green Acres")
    target = resolve_target("prod", "1234")
    _golden("boot-prod-1234-two-archs.ipxe", render_boot_script(target, "https://b.example.org"))


def _console(script: str, label: str, zos_arch: str) -> list[str]:
    """What the console shows from a label to the reboot: each `echo`, with the script's
    ${zos_arch} as iPXE would expand it."""
    section = script.split(f"\n:{label}\n", 1)[1].split("goto reboot", 1)[0]
    return [
        line[len("echo") :].strip().replace("${zos_arch}", zos_arch)
        for line in section.splitlines()
        if line.startswith("echo")
    ]


def test_an_arm64_machine_on_a_network_without_arm64_kernel_reads_why(client, prod):
    script = client.get("/ipxe/prod/1234").content.decode()
    assert "iseq ${zos_arch} arm64" not in script  # no kernel: straight to the refusal
    assert "goto no_kernel_for_arch\n" in script
    shown = _console(script, "no_kernel_for_arch", "arm64")
    assert shown[2:] == [
        "ERROR: no Zero-OS kernel for arm64 machines like this one on network prod.",
        "This boot script has a kernel for:",
        "amd64 machines: zero-os-development-amd64.efi",
        "Ask your support contact for a kernel for arm64 machines,",
        "or start this on a machine of a kind listed above.",
    ]
    # Every line fits an 80-column console and holds nothing a console masks.
    assert all(len(line) <= 78 and re.fullmatch(r"[A-Za-z0-9 .,:_+\-/()=]*", line)
               for line in shown)  # fmt: skip


def test_no_echo_starts_with_a_dash_which_ipxe_would_take_for_an_option(client, both):
    # `echo - text` fails in iPXE ("Unrecognised option"), and a failing line ends the script.
    scripts = [
        client.get("/ipxe/prod/1234").content.decode(),
        render_boot_script(resolve_target("prod"), "https://b.example.org"),
        render_provision_chain_script("https://b.example.org"),
    ]
    for script in scripts:
        for line in script.splitlines():
            words = line.split()
            if "echo" in words:
                after = words[words.index("echo") + 1 : words.index("echo") + 2]
                assert not (after and after[0].startswith("-")), line


def test_a_network_with_only_an_arm64_kernel_serves_the_script(client, arm_kernel):
    network = Network.objects.create(slug="armnet", name="ARM network")
    network.switch_kernel(arm_kernel, arch="arm64")
    response = client.get("/ipxe/armnet/7")
    assert response.status_code == 200  # amd64 machines are told on their console
    script = response.content.decode()
    assert "iseq ${zos_arch} amd64" not in script
    assert "echo     arm64 machines: zero-os-development-arm64.efi\n" in script
    # A network with no kernel at all is still the service's 503.
    Network.objects.create(slug="empty", name="Empty")
    assert client.get("/ipxe/empty/7").status_code == 503


def test_a_kernel_named_in_the_url_boots_the_architecture_it_is_built_for(client, both):
    v2 = make_arm("zero-os-arm64-v2.efi", b"v2")
    script = client.get("/ipxe/prod/7/console=ttyAMA0/zero-os-arm64-v2.efi").content.decode()
    assert "iseq ${zos_arch} arm64 && goto kernel_arm64 ||" in script
    assert "iseq ${zos_arch} amd64" not in script
    assert f"set zos_source0 {v2.content_path}\n" in script


def test_a_node_override_of_an_arm64_kernel_is_for_arm64_machines(client, both):
    special = make_arm("zero-os-arm64-special.efi", b"special")
    farm = Farm.objects.create(farmer_id=1234)
    Node.objects.create(mac="52:54:00:ab:cd:ef", farm=farm, network=both, kernel_override=special)
    script = client.get("/provision/525400abcdef").content.decode()
    assert f"set zos_source0 {special.content_path}\n" in script
    assert "iseq ${zos_arch} amd64" not in script


def test_an_arm64_switch_is_served_at_the_next_request(client, both):
    arm64 = both.kernel_for("arm64")
    assert arm64.content_path in client.get("/ipxe/prod/1").content.decode()
    both.switch_kernel(None, arch="arm64")
    assert arm64.content_path not in client.get("/ipxe/prod/1").content.decode()


# --- the ways ops switch it -----------------------------------------------------------------


def test_import_kernel_with_arch_points_the_networks_arm64_kernel(tmp_path, prod, capsys):
    source = tmp_path / "zero-os-development-arm64.efi"
    source.write_bytes(arm64_image())
    call_command("import_kernel", str(source), "--arch", "arm64", "--network", "prod")
    prod.refresh_from_db()
    assert prod.current_arm64_kernel.name == "zero-os-development-arm64.efi"
    assert prod.current_kernel.name == "zero-os-development-amd64.efi"
    assert (
        "prod now boots zero-os-development-arm64.efi on arm64 machines" in capsys.readouterr().out
    )
    wrong = tmp_path / "zero-os-x86.efi"
    wrong.write_bytes(x86_image())
    with pytest.raises(CommandError, match="is an amd64 kernel .* not arm64"):
        call_command("import_kernel", str(wrong), "--arch", "arm64", "--network", "prod")


def _network_form(prod, **pointers) -> dict:
    return {
        "name": prod.name, "active": "on", "extra_args": "",
        "kernel": prod.kernel_id or "", "link": "", "kernel_arm64": "", "link_arm64": "",
        "kernel_changes-TOTAL_FORMS": "0", "kernel_changes-INITIAL_FORMS": "0",
        "confirmed": "yes", **pointers,
    }  # fmt: skip


def test_the_admin_sets_the_arm64_kernel_audited(admin_client, prod, arm_kernel, admin_user):
    url = f"/admin/provisioning/network/{prod.pk}/change/"
    response = admin_client.post(url, _network_form(prod, kernel_arm64=arm_kernel.pk))
    assert response.status_code == 302, response.content[:3000]
    change = KernelChange.objects.get(arch="arm64")
    assert (change.new, change.changed_by) == (arm_kernel, admin_user)
    assert KernelChange.objects.filter(arch="amd64").count() == 1  # the fixture's, no other
    assert Network.objects.get(pk=prod.pk).kernel_arm64 == arm_kernel


def test_the_admin_refuses_an_amd64_kernel_as_the_arm64_one(admin_client, prod, kernel):
    url = f"/admin/provisioning/network/{prod.pk}/change/"
    response = admin_client.post(url, _network_form(prod, kernel_arm64=kernel.pk))
    assert response.status_code == 200
    assert b"is an amd64 kernel; arm64 machines cannot boot it" in response.content
    assert not KernelChange.objects.filter(arch="arm64").exists()


def test_the_admin_upload_refuses_a_file_of_the_other_architecture(admin_client):
    upload = SimpleUploadedFile("zero-os-arm.efi", arm64_image())
    response = admin_client.post(
        "/admin/provisioning/kernel/add/", {"name": "", "arch": "amd64", "file": upload}
    )
    assert response.status_code == 200
    assert b"is an arm64 kernel (its header says so), not amd64" in (response.content)
    upload = SimpleUploadedFile("zero-os-arm.efi", arm64_image())
    response = admin_client.post(
        "/admin/provisioning/kernel/add/", {"name": "", "arch": "arm64", "file": upload}
    )
    assert response.status_code == 302
    assert Kernel.objects.get(name="zero-os-arm.efi").arch == "arm64"


def test_the_admin_rolls_back_the_arm64_kernel(admin_client, both):
    both.switch_kernel(make_arm("zero-os-arm64-v2.efi", b"v2"), arch="arm64")
    response = admin_client.post(
        "/admin/provisioning/network/",
        {"action": "rollback_arm64_kernel", "_selected_action": [both.pk], "confirmed": "yes"},
        follow=True,
    )
    assert b"now boots zero-os-development-arm64.efi on arm64 machines again" in (response.content)


def test_promoting_an_arm64_kernel_switches_the_networks_arm64_pointer(admin_client, prod):
    newer = make_arm("zero-os-arm64-v2.efi", b"v2")
    response = admin_client.post(
        "/admin/provisioning/kernel/",
        {"action": "promote", "_selected_action": [newer.pk], "apply": "1",
         "networks": [prod.pk]},
        follow=True,
    )  # fmt: skip
    assert b"now boots zero-os-arm64-v2.efi on arm64 machines" in response.content
    prod.refresh_from_db()
    assert (prod.current_kernel.name, prod.current_arm64_kernel) == (
        "zero-os-development-amd64.efi",
        newer,
    )


def test_the_api_switches_and_rolls_back_the_arm64_kernel(client, both):
    _, secret = ApiToken.issue("ops", ["networks", "publish"])
    auth = {"HTTP_AUTHORIZATION": f"Bearer {secret}"}
    newer = make_arm("zero-os-arm64-v2.efi", b"v2")
    switched = client.post(
        "/api/v1/networks/prod/kernel", {"kernel": newer.name, "arch": "arm64"},
        content_type="application/json", **auth,
    )  # fmt: skip
    assert switched.status_code == 200
    body = switched.json()
    assert (body["kernel"], body["arm64_kernel"]) == ("zero-os-development-amd64.efi", newer.name)
    wrong = client.post(
        "/api/v1/networks/prod/kernel", {"kernel": newer.name},
        content_type="application/json", **auth,
    )  # fmt: skip
    assert wrong.status_code == 409
    assert wrong.json()["detail"] == "zero-os-arm64-v2.efi is an arm64 kernel; amd64 machines " \
                                     "cannot boot it"  # fmt: skip
    changes = client.get("/api/v1/networks/prod/changes", **auth).json()
    assert changes[0]["arch"] == "arm64" and changes[0]["new"] == newer.name
    back = client.post("/api/v1/networks/prod/rollback?arch=arm64", **auth)
    assert back.json()["arm64_kernel"] == "zero-os-development-arm64.efi"
    kernels = {k["name"]: k for k in client.get("/api/v1/kernels", **auth).json()}
    assert kernels["zero-os-development-arm64.efi"]["arch"] == "arm64"
    assert kernels["zero-os-development-arm64.efi"]["networks"] == ["prod"]


def test_the_api_upload_takes_the_architecture(client):
    _, secret = ApiToken.issue("ci", ["publish"])
    content = arm64_image(b"ci build")
    upload = SimpleUploadedFile("zero-os-ci-arm64.efi", content)
    response = client.post(
        "/api/v1/kernels",
        {"kernel": upload, "sha256": hashlib.sha256(content).hexdigest(), "arch": "amd64"},
        HTTP_AUTHORIZATION=f"Bearer {secret}",
    )
    assert response.status_code == 400
    assert "is an arm64 kernel (its header says so), not amd64" in response.json()["detail"]
    upload = SimpleUploadedFile("zero-os-ci-arm64.efi", content)
    response = client.post(
        "/api/v1/kernels",
        {"kernel": upload, "sha256": hashlib.sha256(content).hexdigest()},
        HTTP_AUTHORIZATION=f"Bearer {secret}",
    )
    assert response.status_code == 201 and response.json()["arch"] == "arm64"
