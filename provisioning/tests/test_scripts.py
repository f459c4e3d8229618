"""The rendered scripts, byte for byte: a change to what nodes run must be a deliberate one."""

from pathlib import Path

import pytest

from provisioning.models import Farm
from provisioning.scripts import (
    render_boot_script,
    render_error_script,
    render_provision_chain_script,
    render_waiting_script,
    resolve_target,
)

GOLDEN = Path(__file__).parent / "golden"

pytestmark = pytest.mark.django_db


def _golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if not path.exists():
        path.write_text(text)
        pytest.fail(f"wrote {path.name}: review it, commit it, run again")
    assert text == path.read_text()


@pytest.fixture
def fixed_token(monkeypatch):
    """The token of each boot is its own (its time, the database's keys): a fixed one here."""
    from provisioning import tickets

    monkeypatch.setattr(tickets, "issue", lambda *args, **kwargs: "TOKEN")


def test_boot_script_golden(prod, fixed_token):
    Farm.objects.create(farmer_id=1234, name="Green Acres")
    prod.extra_args = "zos-debug"
    prod.save()
    target = resolve_target("prod", "1234", "console=ttyS0 root=___dev___vda")
    _golden("boot-prod-1234.ipxe", render_boot_script(target, "https://bootstrap.example.org"))


def test_boot_script_without_ntp_skips_the_clock(prod, settings):
    settings.ZOSBOOT_NTP_SERVER = ""
    script = render_boot_script(resolve_target("prod", "1"), "http://x")
    assert "ntp" not in script


def test_waiting_script_golden():
    _golden(
        "waiting.ipxe",
        render_waiting_script("52:54:00:ab:cd:ef"),
    )


def test_provision_chain_script_golden():
    _golden("provision.ipxe", render_provision_chain_script("https://bootstrap.example.org"))


def test_error_script_golden():
    _golden("error-404.ipxe", render_error_script(404, "unknown network: x${y}"))


def test_scripts_use_unix_line_endings_and_end_with_one_newline(prod):
    script = render_boot_script(resolve_target("prod", "1"), "http://x")
    assert "\r" not in script
    assert script.endswith("reboot\n") and not script.endswith("\n\n")


def test_ntp_is_tried_only_for_https_where_the_clock_matters(prod):
    target = resolve_target("prod", "1")
    plain = render_boot_script(target, "http://bootstrap.example.org")
    secure = render_boot_script(target, "https://bootstrap.example.org")
    assert "ntp " not in plain and "clock" not in plain
    assert "ntp pool.ntp.org && echo Clock set from pool.ntp.org." in secure
    assert "check that the machine clock (BIOS/UEFI setup) is right" in secure
    assert "Could not reach" not in secure  # Debian's iPXE has no ntp: say nothing untrue


def test_every_download_has_an_idle_timeout_and_a_per_card_pause(prod, settings):
    settings.ZOSBOOT_DOWNLOAD_IDLE_SECONDS = 45
    target = resolve_target("prod")
    script = render_boot_script(target, "http://b.example.org")
    assert f"set zos_source0 {target.kernel.content_path}\n" in script
    assert "imgfetch --timeout 45000 --name zos ${zos_source${zos_src}}?mac=" in script
    assert "set zos_seed:uint8 0x${net${zos_nic}/mac:hexraw}" in script
    assert "sleep ${zos_wait}" in script
    # After the third failure on a card: close it and go on with the next one.
    assert "iseq ${zos_try} 3 && goto nic_done ||" in script
    after_card = script.split(":nic_done\n", 1)[1]
    assert after_card.split("\n")[1:4] == [
        "ifclose net${zos_nic} ||",
        "inc zos_nic",
        "goto next_nic",
    ]
