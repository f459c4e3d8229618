"""The single-file ``uefi`` image: GRUB + memdisk that chain-loads iPXE with the script.

Fast tests (no QEMU): the file is a well-formed x86-64 EFI application, reproducible,
specific to its script, carries the script and iPXE intact, and every missing or broken
tool is a BuildError an operator can act on. That the image really boots and runs the
script is shown by the QEMU boot tests (test_boot.py, marked ``boot``).
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import time
from pathlib import Path

import pytest

from artifacts.formats import FORMATS, BuildError, Toolchain
from artifacts.formats import standalone_efi as se

SCRIPT = b"#!ipxe\necho zosboot standalone efi test\n"
# Everything a farm script uses that a shell-like layer could mangle.
TRICKY = (
    b"#!ipxe\n"
    b"# a comment, and 'single' and \"double\" quotes, a back\\slash and $HOME\n"
    b"set i:int32 0\n"
    b":nic_loop\n"
    b"isset ${net${i}/mac} && echo net${i} is ${net${i}/mac} || goto done\n"
    b"inc i\n"
    b"goto nic_loop\n"
    b":done\n"
    b"echo\tit's ${net0/mac:hexhyp} && done || failed   # trailing comment\n"
    b"chain http://10.0.2.100/proof?mac=${net0/mac}&x='\\'' || goto done\n"
)


def _build(script: bytes, where: Path, ipxe: Path | Toolchain, **kwargs: object) -> bytes:
    where.mkdir(parents=True, exist_ok=True)
    work = where / "work"
    work.mkdir(exist_ok=True)
    dest = where / "zos.efi"
    se.build_standalone_efi(script, dest, work, ipxe, **kwargs)
    return dest.read_bytes()


@pytest.fixture(scope="module")
def image(ipxe_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return _build(SCRIPT, tmp_path_factory.mktemp("image"), ipxe_dir)


def _fake_grub_mkimage(directory: Path, body: str) -> str:
    directory.mkdir()
    tool = directory / "grub-mkimage"
    tool.write_text(f"#!/bin/sh\n{body}\n")
    tool.chmod(0o755)
    return f"{directory}:/usr/bin:/bin"


# --- the image -----------------------------------------------------------------------------


def test_the_image_is_an_x86_64_efi_application(image: bytes) -> None:
    assert image[:2] == b"MZ"
    pe = struct.unpack_from("<I", image, 0x3C)[0]
    assert image[pe : pe + 4] == b"PE\0\0"
    machine = struct.unpack_from("<H", image, pe + 4)[0]
    optional = pe + 24
    magic, subsystem = (
        struct.unpack_from("<H", image, optional)[0],
        struct.unpack_from("<H", image, optional + 68)[0],
    )
    assert (machine, magic, subsystem) == (0x8664, 0x20B, 10)  # x86-64, PE32+, EFI app


def test_the_image_carries_ipxe_unchanged(image: bytes, ipxe_dir: Path) -> None:
    assert (ipxe_dir / se.IPXE_EFI_NAME).read_bytes() in image


def test_the_script_is_recoverable_from_the_image(image: bytes) -> None:
    assert se.extract_script(image) == SCRIPT


@pytest.mark.parametrize(
    "script",
    [
        TRICKY,
        b"#!ipxe\r\necho windows line ends\r\n",
        b"#!ipxe\n" + b"".join(b"# filler %d\n" % i for i in range(6000)) + b"echo end\n",
        b"#!ipxe\n'''\n'\n",
    ],
    ids=["tricky", "crlf", "large", "quotes-only"],
)
def test_any_ascii_script_survives_intact(script: bytes, ipxe_dir: Path, tmp_path: Path) -> None:
    assert se.extract_script(_build(script, tmp_path, ipxe_dir)) == script


def test_same_script_gives_the_same_bytes_whatever_the_build_environment(
    image: bytes, ipxe_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another copy of iPXE (other path, other timestamps), another clock, zone and umask.
    copy = tmp_path / "ipxe-copy"
    copy.mkdir()
    shutil.copy(ipxe_dir / se.IPXE_EFI_NAME, copy / se.IPXE_EFI_NAME)
    os.utime(copy / se.IPXE_EFI_NAME, (1_000_000_000, 1_000_000_000))
    monkeypatch.setenv("TZ", "Pacific/Kiritimati")
    time.sleep(1.1)
    old_umask = os.umask(0o077)
    try:
        again = _build(SCRIPT, tmp_path / "again", copy)
    finally:
        os.umask(old_umask)
    assert again == image


def test_different_scripts_give_different_images(image: bytes, ipxe_dir: Path, tmp_path: Path):
    other = _build(SCRIPT.replace(b"test", b"tset"), tmp_path, ipxe_dir)
    assert other != image
    assert len(other) == len(image)  # same-size script, same layout: only the text differs


def test_the_formats_registry_builds_the_same_image(image: bytes, ipxe_dir: Path, tmp_path):
    dest = tmp_path / "zos.efi"
    FORMATS["uefi"].build(SCRIPT, dest, tmp_path, Toolchain(ipxe_dir=ipxe_dir))
    assert dest.read_bytes() == image


def test_the_build_leaves_no_scratch_files(ipxe_dir: Path, tmp_path: Path) -> None:
    _build(SCRIPT, tmp_path, ipxe_dir)
    assert list((tmp_path / "work").iterdir()) == []


# --- the GRUB config -----------------------------------------------------------------------


def test_grub_cfg_hands_the_script_to_ipxe_as_load_options() -> None:
    cfg = se.render_grub_cfg(b"#!ipxe\necho it's\n")
    assert b"set zos_script='#!ipxe\necho it'\\''s\n'\n" in cfg
    # iPXE drops the first word of its load options as its own name.
    assert b'chainloader (memdisk)/ipxe.efi ipxe.efi "$zos_script"' in cfg


@pytest.mark.parametrize("script", [SCRIPT, TRICKY, b"#!ipxe\n'\n"], ids=["plain", "tricky", "q"])
def test_grub_cfg_is_valid_grub_script(script: bytes, tmp_path: Path) -> None:
    cfg = tmp_path / "grub.cfg"
    cfg.write_bytes(se.render_grub_cfg(script))
    result = subprocess.run(
        ["grub-script-check", str(cfg)], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr


def test_memdisk_is_reproducible_and_owned_by_nobody_in_particular() -> None:
    first = se.make_memdisk(SCRIPT, b"ipxe")
    assert first == se.make_memdisk(SCRIPT, b"ipxe")
    assert b"boot/grub/grub.cfg\0" in first[:4096]


# --- bad input and missing tools -----------------------------------------------------------


@pytest.mark.parametrize("script", [b"#!ipxe\necho caf\xc3\xa9\n", b"#!ipxe\necho \0\n"])
def test_bytes_a_load_option_cannot_carry_are_refused(script: bytes, ipxe_dir: Path, tmp_path):
    with pytest.raises(BuildError, match="only printable ASCII"):
        _build(script, tmp_path, ipxe_dir)


def test_missing_grub_mkimage_is_a_build_error_naming_its_package(ipxe_dir: Path, tmp_path):
    (tmp_path / "empty").mkdir()
    tc = Toolchain(ipxe_dir=ipxe_dir, tool_path=str(tmp_path / "empty"))
    with pytest.raises(BuildError, match=r"grub-mkimage not found \(.*grub-common\)"):
        _build(SCRIPT, tmp_path / "out", tc)


def test_missing_grub_modules_are_a_build_error_naming_their_package(ipxe_dir: Path, tmp_path):
    with pytest.raises(BuildError, match=r"moddep.lst not found \(.*grub-efi-amd64-bin\)"):
        _build(SCRIPT, tmp_path / "out", ipxe_dir, grub_dir=tmp_path / "no-grub")


def test_one_missing_grub_module_is_named(ipxe_dir: Path, tmp_path: Path) -> None:
    grub = tmp_path / "grub"
    shutil.copytree(se.DEFAULT_GRUB_DIR, grub)
    (grub / "chain.mod").unlink()
    with pytest.raises(BuildError, match=r"GRUB modules missing from .*: chain \("):
        _build(SCRIPT, tmp_path / "out", ipxe_dir, grub_dir=grub)


def test_missing_ipxe_is_a_build_error(tmp_path: Path) -> None:
    (tmp_path / "ipxe").mkdir()
    with pytest.raises(BuildError, match=r"ipxe-amd64.efi not found \(run setup/install-ipxe"):
        _build(SCRIPT, tmp_path / "out", tmp_path / "ipxe")


def test_a_failing_grub_mkimage_puts_its_message_in_the_build_error(ipxe_dir: Path, tmp_path):
    path = _fake_grub_mkimage(tmp_path / "bin", 'echo "grub-mkimage: error: disk full" >&2; exit 1')
    tc = Toolchain(ipxe_dir=ipxe_dir, tool_path=path)
    with pytest.raises(BuildError, match="grub-mkimage failed .*disk full"):
        _build(SCRIPT, tmp_path / "out", tc)


def test_a_hanging_grub_mkimage_is_stopped_by_the_timeout(ipxe_dir: Path, tmp_path: Path):
    path = _fake_grub_mkimage(tmp_path / "bin", "exec sleep 30")
    tc = Toolchain(ipxe_dir=ipxe_dir, tool_path=path, timeout=0.5)
    started = time.monotonic()
    with pytest.raises(BuildError, match="grub-mkimage did not finish within 0.5 s"):
        _build(SCRIPT, tmp_path / "out", tc)
    assert time.monotonic() - started < 10


def test_an_unwritable_destination_is_a_build_error(ipxe_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "a-file").write_bytes(b"")
    with pytest.raises(BuildError):
        se.build_standalone_efi(SCRIPT, tmp_path / "a-file" / "zos.efi", tmp_path, ipxe_dir)


# --- checks and fingerprint ----------------------------------------------------------------


def test_check_finds_nothing_wrong_with_the_installed_tools(ipxe_dir: Path) -> None:
    assert se.check_standalone_efi_tools(ipxe_dir) == []
    assert se.check_standalone_efi_tools(Toolchain(ipxe_dir=ipxe_dir)) == []


def test_check_lists_every_problem(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    problems = se.check_standalone_efi_tools(
        Toolchain(ipxe_dir=tmp_path / "ipxe", tool_path=str(tmp_path / "empty")),
        grub_dir=tmp_path / "grub",
    )
    assert len(problems) == 3
    assert "run setup/install-ipxe.sh" in problems[0]
    assert "grub-efi-amd64-bin" in problems[1]
    assert "grub-common" in problems[2]


def test_fingerprint_is_stable_and_follows_ipxe(ipxe_dir: Path, tmp_path: Path) -> None:
    first = se.standalone_efi_fingerprint(ipxe_dir)
    assert first == se.standalone_efi_fingerprint(Toolchain(ipxe_dir=ipxe_dir))
    other = tmp_path / "ipxe"
    other.mkdir()
    (other / se.IPXE_EFI_NAME).write_bytes(b"another ipxe build")
    assert se.standalone_efi_fingerprint(other) != first


# --- arm64 ---------------------------------------------------------------------------------


def test_the_arm64_program_carries_arm64_ipxe_in_an_arm64_grub(ipxe_dir: Path, tmp_path: Path):
    arm = _build(TRICKY, tmp_path / "arm", ipxe_dir, arch="arm64")
    (pe,) = struct.unpack_from("<I", arm, 0x3C)
    assert struct.unpack_from("<H", arm, pe + 4)[0] == 0xAA64  # IMAGE_FILE_MACHINE_ARM64
    assert se.extract_script(arm) == TRICKY
    assert (ipxe_dir / "ipxe-arm64.efi").read_bytes() in arm
    assert _build(TRICKY, tmp_path / "again", ipxe_dir, arch="arm64") == arm


def test_missing_arm64_grub_modules_say_how_to_get_them(ipxe_dir: Path, tmp_path: Path) -> None:
    partial = tmp_path / "ipxe"
    partial.mkdir()
    shutil.copy(ipxe_dir / "ipxe-arm64.efi", partial / "ipxe-arm64.efi")
    expected = r"arm64-efi/moddep.lst not found \(run setup/install-ipxe.sh, .*grub-efi-arm64-bin\)"
    with pytest.raises(BuildError, match=expected):
        _build(SCRIPT, tmp_path / "out", partial, arch="arm64")
    assert se.check_standalone_efi_tools(partial, arch="arm64")[0].endswith("grub-efi-arm64-bin)")


def test_each_architecture_has_its_own_fingerprint(ipxe_dir: Path) -> None:
    amd = se.standalone_efi_fingerprint(ipxe_dir)
    assert se.standalone_efi_fingerprint(ipxe_dir, arch="amd64") == amd
    assert se.standalone_efi_fingerprint(ipxe_dir, arch="arm64") != amd
    with pytest.raises(BuildError, match="no single EFI program for 'riscv64'"):
        se.standalone_efi_fingerprint(ipxe_dir, arch="riscv64")
