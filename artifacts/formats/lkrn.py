"""The ``krn`` download: one Linux-bootable file, iPXE with the farm's script inside.

What it is for: farmers whose machines already boot with GRUB (BIOS) or syslinux put the
file in ``/boot`` and start it with ``linux16 /boot/zos.lkrn`` or ``KERNEL zos.lkrn``,
nothing else: no initrd, no command line. Any loader that boots a Linux bzImage through
its 16-bit entry point does (QEMU ``-kernel`` too).

Why it is built this way (DESIGN.md, "iPXE"): iPXE is never compiled here, so Debian's
``ipxe.lkrn`` has no script of its own. It runs one it is handed at start-up: its initrd,
or its Linux *command line*, which it registers as a script image (``<CMDLINE>``) ahead of
anything else and runs line by line, so labels, ``goto`` and loops work. The command line
is the one a boot loader writes into the kernel's setup header (``cmd_line_ptr``), and the
setup code iPXE runs first copies it to its stack before it relocates itself. So the file
carries the script in its real-mode part and a 24-byte stub points ``cmd_line_ptr`` at it,
whatever the loader wrote there. The stub runs before iPXE's own setup code, and the rest
of iPXE is left alone.

Wrapping it in GRUB instead (``lnxboot.img`` + a core image with a memdisk, as the ``uefi``
download does for EFI) was measured and does not fit: ``linux16`` pulls in GRUB's
``normal`` module, so an i386-pc core with only ``memdisk``, ``tar`` and ``linux16`` is
132 KB compressed, and with ``ipxe.lkrn`` (351 KB, already compressed) ``grub-mkimage``
refuses it ("core image is too big (0x80140 > 0x78000)": the core must fit in low memory).

The bzImage layout (Linux's Documentation/arch/x86/boot.rst): the first ``setup_sects + 1``
sectors are the real-mode part, loaded below 640 KB at a segment the loader chooses; the
rest is the protected-mode part, loaded at 1 MB. The loader jumps to the real-mode part's
offset 0x200 with ``DS`` set to the segment. In iPXE's ``lkrnprefix.S``, offset 0x200 is a
short jump to its setup code, whose first instructions are ``push ds; push imm16; lret``:
they load ``CS`` with ``DS`` and continue at ``imm16``. The file made here is
``ipxe.lkrn`` with:

1. extra sectors inserted after the real-mode part (``setup_sects`` grows by as many), so
   the protected-mode part is unchanged and still loaded at 1 MB: the stub, then the
   script, NUL-terminated, then zeros to the end of a sector;
2. the ``imm16`` above changed from iPXE's continuation to the stub's offset.

The stub (16-bit real mode, ``CS`` = ``DS`` = the real-mode segment) stores
``DS * 16 + script offset`` in ``cmd_line_ptr`` and then continues at iPXE's own
continuation, exactly where iPXE would have gone. Nothing else changes, so taking the
sectors out and the two bytes back gives Debian's ``ipxe.lkrn`` again (the tests check).

Limits, all checked at build time:

- iPXE strips ``BOOT_IMAGE=...`` and ``initrd=...`` (up to the next space) from its command
  line, so a script holding those words cannot travel this way (:class:`UnembeddableScript`,
  a 400 for the farmer; the tar under ``/krn-tar/`` carries any script).
- No NUL byte (the command line is a C string).
- At most :data:`MAX_SCRIPT_BYTES`: iPXE copies the command line to its stack below 0x7C00.
  Boot scripts are about 5 KB; scripts of 28 KB were seen to boot under QEMU, GRUB and
  ISOLINUX, the limit keeps room for the stack below the copy.
- Whatever command line the loader passes is ignored: the script inside decides.

Plain Python, no tools: a build is a few slices of bytes, reproducible by construction.
Proven by booting in QEMU: ``-kernel`` alone, GRUB ``linux16`` with a bare entry, ISOLINUX.
"""

from __future__ import annotations

import struct
from pathlib import Path

from .parts import media_builder
from .toolchain import BuildError, Toolchain, read

#: Part of the fingerprint: bump it whenever a change here changes the bytes of an image.
LKRN_VERSION = "1"

#: Largest script embedded; see the module docstring.
MAX_SCRIPT_BYTES = 16 * 1024

#: Words iPXE removes from its command line before running it (``runtime.c``).
STRIPPED_WORDS = (b"BOOT_IMAGE=", b"initrd=")

SECTOR = 512

# Offsets in the setup header (Linux boot protocol).
_SETUP_SECTS = 0x1F1  # u8: sectors of the real-mode part after the boot sector
_BOOT_FLAG = 0x1FE  # u16: 0xAA55
_JUMP = 0x200  # 2-byte short jump to the setup code: 0xEB, rel8 (from 0x202)
_MAGIC = 0x202  # "HdrS"
_VERSION = 0x206  # u16: boot protocol version; cmd_line_ptr exists from 2.02
_LOADFLAGS = 0x211  # u8: bit 0, LOADED_HIGH (protected-mode part at 1 MB)
_CMD_LINE_PTR = 0x228  # u32: physical address of the command line, written by the loader

# iPXE's first setup instructions: push ds (1E); push imm16 (68 lo hi); lret (CB).
_PUSH_DS, _PUSH_IMM16, _LRET = 0x1E, 0x68, 0xCB


def _stub(script_offset: int, resume: int) -> bytes:
    """The real-mode stub: point ``cmd_line_ptr`` at the script, then resume iPXE's setup.

    Runs with CS = DS = the real-mode segment, at an offset from that segment's start;
    ``script_offset`` and ``resume`` are offsets from the same start. 24 bytes.
    """
    return b"".join([
        b"\x8c\xd8",                                     # mov ax, ds (the loader's segment)
        b"\x66\x0f\xb7\xc0",                             # movzx eax, ax
        b"\x66\xc1\xe0\x04",                             # shl eax, 4 (its physical address)
        b"\x66\x05", struct.pack("<I", script_offset),   # add eax, script_offset
        b"\x66\xa3", struct.pack("<H", _CMD_LINE_PTR),   # mov [cmd_line_ptr], eax
        b"\x68", struct.pack("<H", resume),               # push resume (iPXE's continuation)
        b"\xc3",                                         # ret (CS = DS, as iPXE's lret set)
    ])  # fmt: skip


_STUB_SIZE = len(_stub(0, 0))


class UnembeddableScript(BuildError):
    """The script cannot travel as iPXE's command line; the message says why."""


def check_script(script: bytes) -> None:
    """Raise UnembeddableScript unless iPXE would run ``script`` exactly as given."""
    if b"\0" in script:
        raise UnembeddableScript("the iPXE script holds a NUL byte")
    if len(script) > MAX_SCRIPT_BYTES:
        raise UnembeddableScript(
            f"the iPXE script is {len(script)} bytes; "
            f"the single-file iPXE kernel carries at most {MAX_SCRIPT_BYTES}"
        )
    for word in STRIPPED_WORDS:
        if word in script:
            raise UnembeddableScript(
                f"{word.decode()} cannot be carried by the single-file iPXE kernel "
                "(iPXE removes it from its command line); download the parts under /krn-tar/"
            )


def _setup_entry(lkrn: bytes | bytearray) -> int:
    """Offset of iPXE's setup code, after checking the file is the bzImage it should be."""
    if len(lkrn) < 0x260 or lkrn[_BOOT_FLAG : _BOOT_FLAG + 2] != b"\x55\xaa":
        raise BuildError("ipxe.lkrn is not a Linux kernel image (no boot flag)")
    if lkrn[_MAGIC : _MAGIC + 4] != b"HdrS":
        raise BuildError("ipxe.lkrn has no Linux setup header (HdrS)")
    version = struct.unpack_from("<H", lkrn, _VERSION)[0]
    if version < 0x0202 or not lkrn[_LOADFLAGS] & 0x01:
        raise BuildError(f"ipxe.lkrn uses boot protocol {version:#06x}; 2.02+ loaded high needed")
    if lkrn[_JUMP] != 0xEB:
        raise BuildError("ipxe.lkrn does not start its setup with a short jump")
    entry = _MAGIC + lkrn[_JUMP + 1]
    if (lkrn[entry], lkrn[entry + 1], lkrn[entry + 4]) != (_PUSH_DS, _PUSH_IMM16, _LRET):
        raise BuildError(
            "ipxe.lkrn's setup code is not iPXE's (push ds; push imm16; lret): "
            "the script cannot be embedded in this build"
        )
    return entry


def embed_script(lkrn: bytes, script: bytes) -> bytes:
    """``lkrn`` (Debian's ipxe.lkrn) with ``script`` inside, run at start-up; see above."""
    check_script(script)  # also keeps the real-mode part below 32 KB, as loaders expect
    entry = _setup_entry(lkrn)
    real_mode = (lkrn[_SETUP_SECTS] + 1) * SECTOR
    resume = struct.unpack_from("<H", lkrn, entry + 2)[0]
    added = _stub(real_mode + _STUB_SIZE, resume) + script + b"\0"
    added += bytes(-len(added) % SECTOR)
    image = bytearray(lkrn[:real_mode] + added + lkrn[real_mode:])
    image[_SETUP_SECTS] += len(added) // SECTOR
    struct.pack_into("<H", image, entry + 2, real_mode)  # push <the stub> instead
    return bytes(image)


def _layout(image: bytes) -> tuple[int, int, int, int]:
    """(setup entry, stub offset, script offset, iPXE's continuation) of a built file."""
    entry = _setup_entry(image)
    stub = struct.unpack_from("<H", image, entry + 2)[0]
    if stub + _STUB_SIZE > len(image):
        raise ValueError("no zosboot script in this iPXE kernel")
    script_offset = struct.unpack_from("<I", image, stub + 12)[0]
    resume = struct.unpack_from("<H", image, stub + 21)[0]
    if image[stub : stub + _STUB_SIZE] != _stub(script_offset, resume):
        raise ValueError("no zosboot script in this iPXE kernel")
    return entry, stub, script_offset, resume


def extract_script(image: bytes) -> bytes:
    """The script a built file runs, read back from it (for tests and support)."""
    _, _, script_offset, _ = _layout(image)
    end = image.index(b"\0", script_offset)
    return image[script_offset:end]


def original_lkrn(image: bytes) -> bytes:
    """The ipxe.lkrn a built file was made from: the added sectors out, the jump restored."""
    entry, stub, _, resume = _layout(image)
    added = (image[_SETUP_SECTS] + 1) * SECTOR - stub
    lkrn = bytearray(image[:stub] + image[stub + added :])
    lkrn[_SETUP_SECTS] -= added // SECTOR
    struct.pack_into("<H", lkrn, entry + 2, resume)
    return bytes(lkrn)


@media_builder
def build_lkrn(script: bytes, dest: Path, workdir: Path, tc: Toolchain) -> None:
    """The single file for ``linux16``/``KERNEL``: ipxe.lkrn running ``script`` by itself."""
    dest.write_bytes(embed_script(read(tc.ipxe_lkrn), script))


def lkrn_fingerprint(tc: Toolchain) -> str:
    """What besides ipxe.lkrn decides the bytes: this module's layout."""
    return f"lkrn-embed {LKRN_VERSION}"


#: How to use the file; the portal shows it with the downloaded file's name.
LKRN_HOWTO = """\
Zero-OS network boot for machines that already boot with GRUB or syslinux (BIOS).

THIS_FILE is iPXE, a network boot loader that loads like a Linux kernel, with the
boot script for your farm inside. It needs nothing else: no initrd, no command line.

Install, as root:
  cp THIS_FILE /boot/zos.lkrn

GRUB: add this entry to /etc/grub.d/40_custom, then run update-grub
(or grub2-mkconfig -o /boot/grub2/grub.cfg):

  menuentry "Zero-OS" {
      linux16 /boot/zos.lkrn
  }

If /boot is a partition of its own, write /zos.lkrn instead.
linux16 exists only in GRUB for BIOS (legacy/CSM) boot; for UEFI use the UEFI executable.

syslinux / extlinux: copy it next to syslinux.cfg and add:

  LABEL zos
    KERNEL zos.lkrn

Arguments given to it on a kernel command line are ignored: the script inside decides.
"""
