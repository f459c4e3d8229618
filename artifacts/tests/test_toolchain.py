"""The toolchain under the formats: a missing or failing tool is a readable BuildError, the
checks find what would fail before a farmer asks, and the fingerprint follows every input."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from artifacts.formats import FORMATS, BuildError, Toolchain, check_toolchain, toolchain_fingerprint
from artifacts.tests.test_formats import build_input

SCRIPT = b"#!ipxe\necho zosboot test script one\n"


# --- failures are readable -----------------------------------------------------------------


def _fake_tools(directory: Path, body: str, names: tuple[str, ...]) -> str:
    directory.mkdir()
    for name in names:
        tool = directory / name
        tool.write_text(f"#!/bin/sh\n{body}\n")
        tool.chmod(0o755)
    # The fakes first, then what the fakes themselves need (sh, sleep).
    return f"{directory}:/usr/bin:/bin"


@pytest.mark.parametrize(
    "name", sorted(n for n, fmt in FORMATS.items() if fmt.tools or n == "uefi")
)
def test_a_missing_tool_is_a_build_error_naming_its_package(
    ipxe_dir: Path, tmp_path: Path, name: str
) -> None:
    (tmp_path / "empty").mkdir()
    tc = Toolchain(ipxe_dir=ipxe_dir, tool_path=str(tmp_path / "empty"))
    with pytest.raises(BuildError, match=r"not found \(install the Debian package [a-z-]+\)"):
        FORMATS[name].build(build_input(name, SCRIPT), tmp_path / "out", tmp_path, tc)


def test_a_failing_tool_puts_its_own_message_in_the_build_error(
    ipxe_dir: Path, tmp_path: Path
) -> None:
    path = _fake_tools(
        tmp_path / "bin", 'echo "sfdisk: cannot write: No space left on device" >&2; exit 1',
        ("sfdisk",),
    )  # fmt: skip
    tc = Toolchain(ipxe_dir=ipxe_dir, tool_path=path)
    with pytest.raises(BuildError, match="sfdisk failed .*No space left on device"):
        FORMATS["uefimg"].build(SCRIPT, tmp_path / "out.img", tmp_path, tc)


def test_a_hanging_tool_is_stopped_by_the_timeout(ipxe_dir: Path, tmp_path: Path) -> None:
    path = _fake_tools(tmp_path / "bin", "exec sleep 30", ("sfdisk",))
    tc = Toolchain(ipxe_dir=ipxe_dir, tool_path=path, timeout=0.5)
    started = time.monotonic()
    with pytest.raises(BuildError, match="sfdisk did not finish within 0.5 s"):
        FORMATS["uefimg"].build(SCRIPT, tmp_path / "out.img", tmp_path, tc)
    assert time.monotonic() - started < 10


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_an_unwritable_destination_is_a_build_error(
    tc: Toolchain, tmp_path: Path, name: str
) -> None:
    (tmp_path / "a-file").write_bytes(b"")
    with pytest.raises(BuildError):
        FORMATS[name].build(build_input(name, SCRIPT), tmp_path / "a-file" / "out", tmp_path, tc)


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_missing_ipxe_binaries_are_a_build_error(tmp_path: Path, name: str) -> None:
    (tmp_path / "ipxe").mkdir()
    tc = Toolchain(ipxe_dir=tmp_path / "ipxe")
    with pytest.raises(BuildError, match="not found"):
        FORMATS[name].build(build_input(name, SCRIPT), tmp_path / "out", tmp_path, tc)


# --- toolchain checks and fingerprint ------------------------------------------------------


def test_check_toolchain_finds_nothing_wrong_with_the_installed_toolchain(tc: Toolchain) -> None:
    assert check_toolchain(tc) == []


def test_check_toolchain_reports_a_missing_ipxe_binary(tc: Toolchain, tmp_path: Path) -> None:
    partial = tmp_path / "ipxe"
    partial.mkdir()
    shutil.copy(tc.ipxe_efi, partial / tc.ipxe_efi.name)
    shutil.copy(tc.ipxe_efi_arm64, partial / tc.ipxe_efi_arm64.name)
    shutil.copytree(tc.grub_arm64_dir, partial / "grub" / "arm64-efi")
    shutil.copy(tc.ipxe_license, partial / tc.ipxe_license.name)
    shutil.copy(tc.ipxe_undionly, partial / tc.ipxe_undionly.name)
    shutil.copy(tc.ipxe_snponly, partial / tc.ipxe_snponly.name)
    problems = check_toolchain(Toolchain(ipxe_dir=partial))
    assert problems == [f"{partial / 'ipxe.lkrn'} not found (run setup/install-ipxe.sh)"]


def test_check_toolchain_reports_missing_tools_with_their_packages(
    ipxe_dir: Path, tmp_path: Path
) -> None:
    (tmp_path / "empty").mkdir()
    problems = check_toolchain(
        Toolchain(ipxe_dir=ipxe_dir, tool_path=str(tmp_path / "empty")), ["iso", "usb"]
    )
    assert "xorriso not found (install the Debian package xorriso)" in problems
    assert "mformat not found (install the Debian package mtools)" in problems
    assert "syslinux not found (install the Debian package syslinux)" in problems
    assert "sfdisk not found (install the Debian package fdisk)" in problems


def test_fingerprint_is_stable_and_follows_the_binaries_each_format_uses(
    tc: Toolchain, tmp_path: Path
) -> None:
    copy = tmp_path / "ipxe"
    shutil.copytree(tc.ipxe_dir, copy)
    moved = Toolchain(ipxe_dir=copy)
    assert toolchain_fingerprint(moved) == toolchain_fingerprint(tc)
    before = {name: toolchain_fingerprint(moved, name) for name in FORMATS}
    lkrn = bytearray((copy / "ipxe.lkrn").read_bytes())
    lkrn[-1] ^= 0xFF
    (copy / "ipxe.lkrn").write_bytes(bytes(lkrn))
    after = {name: toolchain_fingerprint(moved, name) for name in FORMATS}
    changed = {name for name in FORMATS if before[name] != after[name]}
    assert changed == {"iso", "usb", "krn", "krn-tar", "lkrn-plain"}
    assert toolchain_fingerprint(moved) != toolchain_fingerprint(tc)
