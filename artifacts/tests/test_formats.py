"""Tests for artifacts.formats: every format builds, reproducibly, with the script inside.

The iPXE binaries come from setup/install-ipxe.sh (into the test cache unless
ZOSBOOT_IPXE_DIR is set), so nothing here is skipped for want of them. The tests marked
``boot`` start each medium in QEMU and wait for a real kernel to print the command line
the embedded script asked for.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import subprocess
import tarfile
import tempfile
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from artifacts.formats import (
    AUTOEXEC,
    EPOCH,
    FORMATS,
    KRN_README,
    LICENSE_NAME,
    LKRN_HOWTO,
    BuildError,
    Toolchain,
    UnembeddableScript,
    pxe_kit,
)
from artifacts.formats import lkrn as lkrn_format

REPO = Path(__file__).resolve().parents[2]
SCRIPT = b"#!ipxe\necho zosboot test script one\n"
OTHER_SCRIPT = b"#!ipxe\necho zosboot test script two, a little longer than one\n"
PLAIN = {
    "lkrn-plain": "ipxe.lkrn",
    "efi-plain": "ipxe-amd64.efi",
    "efi-plain-arm64": "ipxe-arm64.efi",
}
EMBEDDING = sorted(name for name in FORMATS if name not in PLAIN)
MIB = 1024 * 1024


# --- fixtures ------------------------------------------------------------------------------


def build_input(name: str, script: bytes) -> bytes:
    """What a format is built from: the script, or for the PXE kit its texts, the script as
    its autoexec.ipxe."""
    if name != "pxe-kit":
        return script
    texts = {path: f"# {path}\n" for path in pxe_kit.TEXTS}
    texts["tftp/autoexec.ipxe"] = script.decode()
    return pxe_kit.payload("zos-test-pxe-kit", texts)


def build(tc: Toolchain, name: str, script: bytes, where: Path) -> bytes:
    """Build one image in a fresh scratch dir under ``where`` and return its bytes."""
    where.mkdir(parents=True, exist_ok=True)
    work = where / f"work-{name}"
    work.mkdir()
    dest = where / f"{name}.{FORMATS[name].extension}"
    FORMATS[name].build(build_input(name, script), dest, work, tc)
    return dest.read_bytes()


@pytest.fixture(scope="session")
def images(tc: Toolchain, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every format built once from SCRIPT, as files, for the tests that look inside."""
    where = tmp_path_factory.mktemp("images")
    for name in FORMATS:
        build(tc, name, SCRIPT, where)
    return {name: where / f"{name}.{fmt.extension}" for name, fmt in FORMATS.items()}


@pytest.fixture(scope="session")
def rebuilt(
    tc: Toolchain, images: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, bytes]:
    """Every format built again from SCRIPT, with everything a build must not depend on
    changed: the clock (past FAT's 2 s resolution), the time zone, the umask, the scratch
    file system, and the iPXE files' path and timestamps."""
    copy = tmp_path_factory.mktemp("ipxe-copy")
    shutil.copytree(tc.ipxe_dir, copy, dirs_exist_ok=True)
    for copied in copy.rglob("*"):
        os.utime(copied, (time.time() + 12345, time.time() + 12345))
    moved = Toolchain(ipxe_dir=copy)
    shm = Path("/dev/shm")
    base = shm if shm.is_dir() and os.access(shm, os.W_OK) else tmp_path_factory.getbasetemp()
    time.sleep(2.1)
    old_tz, old_umask = os.environ.get("TZ"), os.umask(0o077)
    os.environ["TZ"] = "Asia/Kolkata"
    try:
        with tempfile.TemporaryDirectory(dir=base, prefix="zosboot-test-") as where:
            return {name: build(moved, name, SCRIPT, Path(where)) for name in FORMATS}
    finally:
        os.umask(old_umask)
        if old_tz is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = old_tz


def mtools(*argv: str) -> bytes:
    """Run an mtools command on an image and return its output."""
    result = subprocess.run(
        list(argv), capture_output=True, timeout=30, check=True,
        env={**os.environ, "MTOOLS_SKIP_CHECK": "1"},
    )  # fmt: skip
    return result.stdout


# --- building ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_every_format_builds_a_small_image(images: dict[str, Path], name: str) -> None:
    size = images[name].stat().st_size
    assert 0 < size < 5 * MIB


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_same_script_gives_identical_bytes_whatever_the_host_state(
    images: dict[str, Path], rebuilt: dict[str, bytes], name: str
) -> None:
    assert hashlib.sha256(images[name].read_bytes()).hexdigest() == (
        hashlib.sha256(rebuilt[name]).hexdigest()
    )


@pytest.mark.parametrize("name", EMBEDDING)
def test_different_scripts_give_different_images(
    tc: Toolchain, images: dict[str, Path], tmp_path: Path, name: str
) -> None:
    assert build(tc, name, OTHER_SCRIPT, tmp_path) != images[name].read_bytes()


@pytest.mark.parametrize("name", sorted(PLAIN))
def test_plain_formats_are_the_shipped_binary_whatever_the_script(
    tc: Toolchain, images: dict[str, Path], tmp_path: Path, name: str
) -> None:
    shipped = (tc.ipxe_dir / PLAIN[name]).read_bytes()
    assert images[name].read_bytes() == shipped
    assert build(tc, name, OTHER_SCRIPT, tmp_path) == shipped


def test_a_text_that_is_not_an_ipxe_script_is_refused(tc: Toolchain, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="#!ipxe"):
        FORMATS["usb"].build(b"echo hello\n", tmp_path / "x.img", tmp_path, tc)


# --- what is inside ------------------------------------------------------------------------


def _el_torito_entries(iso: bytes) -> list[tuple[int, int, int]]:
    """(platform id, boot indicator, LBA) of every El Torito boot entry, parsed by hand.

    Read independently of xorriso: the boot record volume descriptor (sector 17) points to
    the catalog; a validation entry, the default entry, then section headers + entries.
    """
    brvd = iso[17 * 2048 : 18 * 2048]
    assert brvd[0:7] == b"\x00CD001\x01"
    assert brvd[7:30] == b"EL TORITO SPECIFICATION"
    catalog_lba = struct.unpack_from("<I", brvd, 0x47)[0]
    catalog = iso[catalog_lba * 2048 : catalog_lba * 2048 + 2048]
    assert catalog[0] == 1 and catalog[30:32] == b"\x55\xaa"  # validation entry
    platform = catalog[1]
    entries = [(platform, catalog[32], struct.unpack_from("<I", catalog, 32 + 8)[0])]
    offset = 64
    while catalog[offset] in (0x90, 0x91):  # section header (0x91: the last one)
        platform, count = catalog[offset + 1], struct.unpack_from("<H", catalog, offset + 2)[0]
        for i in range(count):
            entry = offset + 32 * (i + 1)
            entries.append(
                (platform, catalog[entry], struct.unpack_from("<I", catalog, entry + 8)[0])
            )
        if catalog[offset] == 0x91:
            break
        offset += 32 * (count + 1)
    return entries


def test_iso_boots_bios_and_uefi_from_cd_and_carries_an_isohybrid_mbr(
    tc: Toolchain, images: dict[str, Path], tmp_path: Path
) -> None:
    iso = images["iso"].read_bytes()
    entries = _el_torito_entries(iso)
    assert [(platform, indicator) for platform, indicator, _ in entries] == [
        (0x00, 0x88),  # x86 BIOS, bootable
        (0xEF, 0x88),  # UEFI, bootable
    ]
    bios_lba, efi_lba = entries[0][2], entries[1][2]
    # isolinux.bin, after the 56-byte boot info table xorriso patches in at offset 8.
    isolinux = tc.isolinux_bin.read_bytes()
    assert iso[bios_lba * 2048 + 64 : bios_lba * 2048 + 2048] == isolinux[64:2048]
    # The UEFI entry is a FAT image with iPXE and the script.
    efi_img = tmp_path / "efi.img"
    efi_img.write_bytes(iso[efi_lba * 2048 : efi_lba * 2048 + 4 * MIB])
    assert mtools("mtype", "-i", str(efi_img), f"::/EFI/BOOT/{AUTOEXEC}") == SCRIPT
    _assert_both_architectures(tc, str(efi_img), tmp_path)
    # Written raw to a USB stick: syslinux's isohybrid MBR, a 0xEF partition, a GPT.
    assert iso[:432] == tc.isohybrid_mbr.read_bytes()[:432]
    assert iso[510:512] == b"\x55\xaa"
    partition_types = [iso[446 + 16 * i + 4] for i in range(4)]
    assert iso[446] == 0x80 and 0xEF in partition_types
    assert iso[512:520] == b"EFI PART"


def test_iso_shows_the_script_at_its_root_and_boots_it_via_isolinux(
    images: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    subprocess.run(
        ["xorriso", "-osirrox", "on", "-indev", str(images["iso"]),
         "-extract", "/zos.ipxe", str(out / "zos.ipxe"),
         "-extract", "/boot/isolinux/isolinux.cfg", str(out / "isolinux.cfg")],
        capture_output=True, timeout=30, check=True,
    )  # fmt: skip
    assert (out / "zos.ipxe").read_bytes() == SCRIPT
    cfg = (out / "isolinux.cfg").read_text()
    assert "KERNEL /boot/ipxe.lkrn" in cfg and "initrd=/zos.ipxe" in cfg


def test_usb_image_is_an_mbr_disk_with_syslinux_and_uefi_boot_files(
    tc: Toolchain, images: dict[str, Path], tmp_path: Path
) -> None:
    disk = images["usb"].read_bytes()
    assert disk[:440] == tc.syslinux_mbr.read_bytes()[:440]
    assert disk[510:512] == b"\x55\xaa"
    status, ptype = disk[446], disk[446 + 4]
    start, size = struct.unpack_from("<II", disk, 446 + 8)
    assert (status, ptype, start) == (0x80, 0x0E, 2048)
    assert disk[446 + 16 : 510] == bytes(48)  # a single partition
    assert len(disk) == (start + size) * 512
    boot_sector = disk[start * 512 : start * 512 + 512]
    assert boot_sector[3:11] == b"SYSLINUX" and boot_sector[0x36:0x3E] == b"FAT16   "
    part = f"{images['usb']}@@{start * 512}"
    assert mtools("mtype", "-i", part, f"::/EFI/BOOT/{AUTOEXEC}") == SCRIPT
    listing = mtools("mdir", "-a", "-b", "-i", part, "::/").decode()
    assert "ldlinux.sys" in listing.lower() and "ldlinux.c32" in listing.lower()
    cfg = mtools("mtype", "-i", part, "::/syslinux.cfg").decode()
    assert "KERNEL /ipxe.lkrn" in cfg and f"initrd=/EFI/BOOT/{AUTOEXEC}" in cfg
    mtools("mcopy", "-n", "-i", part, "::/ipxe.lkrn", str(tmp_path / "copy"))
    assert (tmp_path / "copy").read_bytes() == tc.ipxe_lkrn.read_bytes()
    _assert_both_architectures(tc, part, tmp_path)


def test_uefimg_is_a_gpt_disk_with_one_efi_system_partition(
    tc: Toolchain, images: dict[str, Path], tmp_path: Path
) -> None:
    table = json.loads(
        subprocess.run(
            ["sfdisk", "--json", str(images["uefimg"])],
            capture_output=True,
            timeout=30,
            check=True,
        ).stdout  # fmt: skip
    )["partitiontable"]
    assert table["label"] == "gpt"
    [part] = table["partitions"]
    assert part["type"] == "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
    disk = images["uefimg"].read_bytes()
    assert disk[446 + 4] == 0xEE  # protective MBR
    assert disk[part["start"] * 512 + 0x36 : part["start"] * 512 + 0x3E] == b"FAT16   "
    esp = f"{images['uefimg']}@@{part['start'] * 512}"
    assert mtools("mtype", "-i", esp, f"::/EFI/BOOT/{AUTOEXEC}") == SCRIPT
    _assert_both_architectures(tc, esp, tmp_path)


def _pe_machine(efi: bytes) -> int:
    """The machine type in a PE executable's COFF header (0x8664 x86-64, 0xAA64 arm64)."""
    (pe,) = struct.unpack_from("<I", efi, 0x3C)
    assert efi[pe : pe + 4] == b"PE\0\0"
    return struct.unpack_from("<H", efi, pe + 4)[0]


def _assert_both_architectures(tc: Toolchain, fat: str, tmp_path: Path) -> None:
    """A FAT with iPXE under each architecture's default name, next to the one script."""
    for name, shipped, machine in (
        ("BOOTX64.EFI", tc.ipxe_efi, 0x8664),
        ("BOOTAA64.EFI", tc.ipxe_efi_arm64, 0xAA64),
    ):
        mtools("mcopy", "-n", "-i", fat, f"::/EFI/BOOT/{name}", str(tmp_path / name))
        assert (tmp_path / name).read_bytes() == shipped.read_bytes()
        assert _pe_machine(shipped.read_bytes()) == machine
    listing = mtools("mdir", "-b", "-i", fat, "::/EFI/BOOT").decode().split()
    assert sorted(Path(entry).name for entry in listing) == sorted(
        ["BOOTX64.EFI", "BOOTAA64.EFI", AUTOEXEC]
    )


def test_the_arm64_uefi_program_is_an_arm64_grub_carrying_arm64_ipxe_and_the_script(
    tc: Toolchain, images: dict[str, Path]
) -> None:
    from artifacts.formats.standalone_efi import extract_script

    arm = images["uefi-arm64"].read_bytes()
    assert _pe_machine(arm) == 0xAA64
    assert _pe_machine(images["uefi"].read_bytes()) == 0x8664
    assert extract_script(arm) == SCRIPT
    assert tc.ipxe_efi_arm64.read_bytes() in arm
    assert tc.ipxe_efi.read_bytes() not in arm


def test_disk_ids_differ_between_scripts_so_two_sticks_can_share_a_machine(
    tc: Toolchain, images: dict[str, Path], tmp_path: Path
) -> None:
    other = tmp_path / "other.img"
    other.write_bytes(build(tc, "uefimg", OTHER_SCRIPT, tmp_path))

    def disk_guid(path: Path) -> str:
        out = subprocess.run(["sfdisk", "--json", str(path)], capture_output=True, check=True)
        return json.loads(out.stdout)["partitiontable"]["id"]

    assert disk_guid(images["uefimg"]) != disk_guid(other)


def test_krn_tar_holds_the_kernel_the_script_and_the_documented_stanzas(
    tc: Toolchain, images: dict[str, Path]
) -> None:
    with tarfile.open(images["krn-tar"]) as tar:
        members = tar.getmembers()
        assert [m.name for m in members] == [
            "zos", "zos/README.txt", "zos/ipxe.lkrn", "zos/zos.ipxe", "zos/IPXE-LICENSE.txt",
        ]  # fmt: skip
        assert all(m.mtime == EPOCH and m.uid == 0 and m.gid == 0 for m in members)
        assert tar.extractfile("zos/zos.ipxe").read() == SCRIPT
        assert tar.extractfile("zos/ipxe.lkrn").read() == tc.ipxe_lkrn.read_bytes()
        readme = tar.extractfile("zos/README.txt").read().decode()
    assert readme == KRN_README
    assert "linux16 /boot/zos/ipxe.lkrn" in readme and "initrd16 /boot/zos/zos.ipxe" in readme
    assert "KERNEL ipxe.lkrn" in readme and "APPEND initrd=zos.ipxe" in readme


def test_krn_is_one_linux_kernel_image_with_the_script_in_its_real_mode_part(
    tc: Toolchain, images: dict[str, Path]
) -> None:
    image = images["krn"].read_bytes()
    shipped = tc.ipxe_lkrn.read_bytes()
    # A Linux boot-protocol image: boot flag, "HdrS" at offset 514, loaded high.
    assert image[510:512] == b"\x55\xaa" and image[514:518] == b"HdrS"
    assert struct.unpack_from("<H", image, 0x206)[0] >= 0x0202 and image[0x211] & 1
    # The real-mode part grew by whole sectors; the protected-mode part (iPXE's payload,
    # loaded at 1 MB) is Debian's, byte for byte.
    real, shipped_real = (image[0x1F1] + 1) * 512, (shipped[0x1F1] + 1) * 512
    assert real > shipped_real and image[real:] == shipped[shipped_real:]
    assert image[0x1F4:0x1F8] == shipped[0x1F4:0x1F8]  # syssize
    # The script sits in the added sectors, NUL-terminated, where the stub points.
    assert lkrn_format.extract_script(image) == SCRIPT
    assert image.index(SCRIPT + b"\0") >= shipped_real
    # Taking out the sectors and restoring the two patched bytes gives Debian's file again:
    # nothing else of iPXE was touched.
    assert lkrn_format.original_lkrn(image) == shipped
    assert sum(a != b for a, b in zip(image[:shipped_real], shipped, strict=False)) == 3


def test_krn_how_to_names_only_the_one_file(tc: Toolchain) -> None:
    assert "linux16 /boot/zos.lkrn\n  }" in LKRN_HOWTO and "KERNEL zos.lkrn" in LKRN_HOWTO
    assert "initrd16" not in LKRN_HOWTO and "initrd=" not in LKRN_HOWTO


def test_krn_without_an_embedded_script_is_told_apart(tc: Toolchain) -> None:
    with pytest.raises(ValueError, match="no zosboot script"):
        lkrn_format.extract_script(tc.ipxe_lkrn.read_bytes())


@pytest.mark.parametrize(
    ("script", "reason"),
    [
        (b"#!ipxe\necho a\0b\n", "NUL"),
        (b"#!ipxe\n" + b"# padding\n" * 1700, "at most 16384"),
        (b"#!ipxe\nkernel x initrd=y\n", "initrd="),
        (b"#!ipxe\necho BOOT_IMAGE=y\n", "BOOT_IMAGE="),
    ],
    ids=["nul", "too-long", "initrd", "boot-image"],
)
def test_krn_refuses_a_script_ipxe_would_not_run_as_given(
    tc: Toolchain, tmp_path: Path, script: bytes, reason: str
) -> None:
    with pytest.raises(UnembeddableScript, match=reason):
        FORMATS["krn"].build(script, tmp_path / "x.lkrn", tmp_path, tc)
    assert not (tmp_path / "x.lkrn").exists()


def test_krn_refuses_an_ipxe_lkrn_whose_setup_code_it_does_not_know(
    tc: Toolchain, tmp_path: Path
) -> None:
    odd = bytearray(tc.ipxe_lkrn.read_bytes())
    odd[0x202 + odd[0x201]] = 0x90  # nop instead of iPXE's "push ds"
    (tmp_path / "ipxe").mkdir()
    (tmp_path / "ipxe" / "ipxe.lkrn").write_bytes(bytes(odd))
    with pytest.raises(BuildError, match="not iPXE's"):
        FORMATS["krn"].build(SCRIPT, tmp_path / "x.lkrn", tmp_path, Toolchain(tmp_path / "ipxe"))


# --- boots ---------------------------------------------------------------------------------

GUEST_URL = "http://10.0.2.100"


class _ProofServer(ThreadingHTTPServer):
    """Test HTTP server on 127.0.0.1: the script each medium chains to, and a kernel."""

    def __init__(self, kernel: bytes) -> None:
        super().__init__(("127.0.0.1", 0), _ProofHandler)
        self.kernel = kernel
        self.requests: list[str] = []


class _ProofHandler(BaseHTTPRequestHandler):
    server: _ProofServer

    def do_GET(self) -> None:
        self.server.requests.append(self.path)
        if self.path.startswith("/proof-"):
            tag = self.path.removeprefix("/proof-")
            body = (
                f"#!ipxe\nkernel {GUEST_URL}/vmlinuz console=ttyS0 zosproof={tag}\nboot\n"
            ).encode()
        elif self.path == "/vmlinuz":
            body = self.server.kernel
        else:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass  # keep pytest's output for failures


@pytest.fixture(scope="module")
def proof_server() -> Iterator[_ProofServer]:
    from artifacts.tests import qemu

    problems = qemu.host_problems()
    assert not problems, "; ".join(problems)
    result = subprocess.run(
        ["bash", str(REPO / "setup" / "test-kernel.sh")],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert result.returncode == 0, f"setup/test-kernel.sh failed:\n{result.stderr}"
    server = _ProofServer(Path(result.stdout.strip()).read_bytes())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


# (case, format, how the medium is attached, firmware). The usual ways each format boots are
# proven end to end against the service in test_boot.py; these are the other ways a farmer
# may use the same image.
BOOTS = [
    ("iso-bios-usb", "iso", "UsbStick", "bios"),
    ("iso-uefi-usb", "iso", "UsbStick", "uefi"),
    ("uefimg-uefi-disk", "uefimg", "Disk", "uefi"),
]


def _krn_isolinux(image: Path, tmp_path: Path):
    from artifacts.tests import qemu

    return qemu.Cdrom(qemu.isolinux_cd_lkrn(image, LKRN_HOWTO, tmp_path / "sl.iso", tmp_path))


def _krn_kernel_with_a_command_line(image: Path, tmp_path: Path):
    from artifacts.tests import qemu

    # What the loader passes is ignored: this command line, a script of its own, never runs.
    return qemu.DirectKernel(image, append=f"dhcp && chain {GUEST_URL}/proof-wrong")


# The single-file krn: the syslinux way the how-to gives, and a loader's command line.
KRN_BOOTS = [
    ("krn-isolinux", _krn_isolinux),
    ("krn-append-ignored", _krn_kernel_with_a_command_line),
]


@pytest.mark.boot
@pytest.mark.parametrize(("case", "name", "attach", "firmware"), BOOTS, ids=[b[0] for b in BOOTS])
def test_image_boots_a_kernel_through_the_embedded_script(
    tc: Toolchain,
    proof_server: _ProofServer,
    tmp_path: Path,
    case: str,
    name: str,
    attach: str,
    firmware: str,
) -> None:
    from artifacts.tests import qemu

    script = f"#!ipxe\ndhcp\nchain {GUEST_URL}/proof-{case}\n".encode()
    image = tmp_path / f"{case}.{FORMATS[name].extension}"
    (tmp_path / "work").mkdir()
    FORMATS[name].build(script, image, tmp_path / "work", tc)
    proof_server.requests.clear()
    result = qemu.boot(
        getattr(qemu, attach)(image),
        firmware=firmware,
        http_port=proof_server.server_address[1],
        timeout=240,
        workdir=tmp_path,
    )
    assert f"/proof-{case}" in proof_server.requests
    assert f"zosproof={case}" in (result.kernel_cmdline or "")


@pytest.mark.boot
@pytest.mark.parametrize(("case", "medium"), KRN_BOOTS, ids=[b[0] for b in KRN_BOOTS])
def test_krn_boots_a_kernel_through_the_embedded_script(
    tc: Toolchain, proof_server: _ProofServer, tmp_path: Path, case: str, medium
) -> None:
    from artifacts.tests import qemu

    script = f"#!ipxe\ndhcp\nchain {GUEST_URL}/proof-{case}\n".encode()
    image = tmp_path / "zos.lkrn"
    (tmp_path / "work").mkdir()
    FORMATS["krn"].build(script, image, tmp_path / "work", tc)
    proof_server.requests.clear()
    result = qemu.boot(
        medium(image, tmp_path),
        http_port=proof_server.server_address[1],
        timeout=240,
        workdir=tmp_path,
    )
    assert proof_server.requests[:1] == [f"/proof-{case}"]
    assert f"zosproof={case}" in (result.kernel_cmdline or "")


def test_images_that_ship_ipxe_beside_other_files_carry_its_licence(
    tc: Toolchain, images: dict[str, Path], tmp_path: Path
) -> None:
    licence = tc.ipxe_license.read_bytes()
    assert b"GPL" in licence
    subprocess.run(
        ["xorriso", "-osirrox", "on", "-indev", str(images["iso"]),
         "-extract", f"/{LICENSE_NAME}", str(tmp_path / "iso-licence")],
        capture_output=True, timeout=30, check=True,
    )  # fmt: skip
    assert (tmp_path / "iso-licence").read_bytes() == licence
    for name in ("usb", "uefimg"):
        part = f"{images[name]}@@{2048 * 512}"
        assert mtools("mtype", "-i", part, f"::/{LICENSE_NAME}") == licence
    with tarfile.open(images["krn-tar"]) as tar:
        assert tar.extractfile(f"zos/{LICENSE_NAME}").read() == licence
