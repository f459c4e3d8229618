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


def test_boot_script_golden(prod):
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
        render_waiting_script("52:54:00:ab:cd:ef", "https://bootstrap.example.org", True),
    )


def test_provision_chain_script_golden():
    _golden("provision.ipxe", render_provision_chain_script("https://bootstrap.example.org"))


def test_error_script_golden():
    _golden("error-404.ipxe", render_error_script(404, "unknown network: x${y}"))


def test_scripts_use_unix_line_endings_and_end_with_one_newline(prod):
    script = render_boot_script(resolve_target("prod", "1"), "http://x")
    assert "\r" not in script
    assert script.endswith("reboot\n") and not script.endswith("\n\n")
