"""Release signatures: which kernels may be booted by the networks and links that need one.

A release is signed in CI with OpenSSH, the format git uses:

    ssh-keygen -Y sign -f release_key -n zosboot-kernel zero-os-v3.4.0.efi   # writes .sig

and checked here against the allowed-signers file the deployment names
(`ZOSBOOT_RELEASE_SIGNERS`, one `principal namespaces="zosboot-kernel" key` line a key), with
`ssh-keygen -Y verify` itself: no second reading of the format to get wrong.

The policy is the deployment's settings, on purpose: `ZOSBOOT_SIGNED_NETWORKS` (these
networks) and `ZOSBOOT_SIGNED_LINKS` (every branch link) point only at a kernel whose
signature verifies now, against today's signers (a removed key no longer counts). Nothing in
the database, the admin or the API can turn it off, so a stolen session or token cannot
either. Every way of switching ends in Network._point or BranchLink.point, which ask
`require_signed` first.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError

NAMESPACE = "zosboot-kernel"
MAX_SIGNATURE_BYTES = 16 * 1024  # an SSH signature is well under 1 KB
TIMEOUT_SECONDS = 120  # ssh-keygen hashes the whole kernel


class SignatureError(ValidationError):
    """Why a kernel may not be booted where a signature is required, or a signature was not
    taken; said to the user. A ValidationError, so every switching path already says it."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code="signature")

    def __str__(self) -> str:
        return self.messages[0]


def is_signature(text: str) -> bool:
    return text.strip().startswith("-----BEGIN SSH SIGNATURE-----")


def clean_signature(raw: bytes | str) -> str:
    """The armoured signature as text, or SignatureError when it is not one."""
    if isinstance(raw, bytes):
        if len(raw) > MAX_SIGNATURE_BYTES:
            raise SignatureError("that is not an SSH signature (too large)")
        try:
            raw = raw.decode("ascii")
        except UnicodeDecodeError:
            raise SignatureError("that is not an SSH signature (not ASCII armour)") from None
    text = raw.strip()
    if len(text) > MAX_SIGNATURE_BYTES or not is_signature(text):
        raise SignatureError(
            "that is not an SSH signature: make one with "
            f"ssh-keygen -Y sign -f KEY -n {NAMESPACE} FILE"
        )
    return text + "\n"


def signers_file() -> Path | None:
    configured = settings.ZOSBOOT_RELEASE_SIGNERS
    return Path(configured) if configured else None


def verify(path: Path, signature: str) -> str:
    """Check `signature` over the file at `path` against the allowed signers; return the
    signer (the principal of the allowed-signers line that matched)."""
    allowed = signers_file()
    if allowed is None:
        raise SignatureError("no release signers are configured (ZOSBOOT_RELEASE_SIGNERS)")
    if not allowed.is_file():
        raise SignatureError(f"the release signers file {allowed} is missing")
    if not signature:
        raise SignatureError("it carries no signature")
    sig_path = _write_temporary(signature)
    try:
        principals = _run(["ssh-keygen", "-Y", "find-principals", "-f", str(allowed),
                           "-s", str(sig_path)], stdin=None)  # fmt: skip
        if principals.returncode != 0:
            raise SignatureError("its signature is not by any allowed release signer")
        for principal in principals.stdout.split():
            with path.open("rb") as data:
                checked = _run(["ssh-keygen", "-Y", "verify", "-f", str(allowed),
                                "-I", principal, "-n", NAMESPACE, "-s", str(sig_path)],
                               stdin=data)  # fmt: skip
            if checked.returncode == 0:
                return principal
        raise SignatureError("its signature does not match the file (changed since signing?)")
    finally:
        sig_path.unlink(missing_ok=True)


def requires_signature(*, network_slug: str | None = None, link: bool = False) -> bool:
    if link:
        return settings.ZOSBOOT_SIGNED_LINKS
    return network_slug in settings.ZOSBOOT_SIGNED_NETWORKS


def require_signed(kernel, *, where: str, network_slug: str | None = None, link=False) -> None:
    """Refuse (SignatureError naming `where` and the reason) to point a protected network or
    link at a kernel whose signature does not verify now."""
    if kernel is None or not requires_signature(network_slug=network_slug, link=link):
        return
    try:
        verify(Path(kernel.file.path), kernel.signature)
    except SignatureError as exc:
        raise SignatureError(
            f"{where} boots only signed kernels, and {kernel.name} cannot be used: {exc}"
        ) from None


def offer(kernel, signed: tuple[str, str] | None, *, user=None, via: str = "") -> bool:
    """A signature (text, signer) that came, already `checked`, with the same bytes of a
    kernel registered before. It is taken when the kernel has none, or has one that does not
    verify now (junk kept from before, a key since removed): recorded as a KernelRecord.
    A signature that verifies is never replaced. Whether it was taken."""
    from .models.kernels import KernelRecord

    if not signed or signed[0] == kernel.signature:
        return False
    if kernel.signature and holds(kernel):
        return False
    action = KernelRecord.Action.SIGNATURE if kernel.signature else KernelRecord.Action.SIGNED
    note = f"by {signed[1]}" if signed[1] else "signer not checked (no release signers set)"
    if kernel.signature:
        note += f"; replaced a signature that does not verify ({kernel.signature_label})"
    kernel.signature, kernel.signer = signed
    kernel.save(update_fields=["signature", "signer"])
    KernelRecord.note_for(kernel, action, user=user, via=via, note=note)
    return True


def holds(kernel) -> bool:
    """Whether the kernel's stored signature verifies over its file now: against today's
    signers when there are some, else as a well-formed signature of these bytes."""
    try:
        _check(Path(kernel.file.path), kernel.signature)
    except SignatureError:
        return False
    return True


def checked(path: Path, raw: bytes | str) -> tuple[str, str]:
    """A signature given with a kernel: (its text, its signer), checked against the file
    before anything is stored, and SignatureError when it does not verify. With release
    signers configured it must be by one of them; without, it must still be a real
    signature over these very bytes in the zosboot-kernel namespace (signer ""), so no junk
    is ever kept: a network that needs a signature checks the signer at each switch."""
    text = clean_signature(raw)
    return text, _check(path, text)


def _check(path: Path, text: str) -> str:
    if signers_file() is not None:
        return verify(path, text)
    if not text:
        raise SignatureError("it carries no signature")
    sig_path = _write_temporary(text)
    try:
        with path.open("rb") as data:
            result = _run(["ssh-keygen", "-Y", "check-novalidate", "-n", NAMESPACE,
                           "-s", str(sig_path)], stdin=data)  # fmt: skip
    finally:
        sig_path.unlink(missing_ok=True)
    if result.returncode != 0:
        raise SignatureError(
            "that signature does not verify over this file in the namespace "
            f"{NAMESPACE} (made for another file, or not by ssh-keygen -Y sign -n {NAMESPACE})"
        )
    return ""


def _write_temporary(signature: str) -> Path:
    """ssh-keygen reads the signature from a file: one of our own, private to this check."""
    descriptor, name = tempfile.mkstemp(prefix="sig-", suffix=".sig")
    with os.fdopen(descriptor, "w") as handle:
        handle.write(signature)
    return Path(name)


def _run(command: list[str], stdin) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(
            command, stdin=stdin, capture_output=True, text=True, timeout=TIMEOUT_SECONDS,
            check=False,
        )  # fmt: skip
    except FileNotFoundError:
        raise SignatureError("ssh-keygen is not installed on the server") from None
    except subprocess.TimeoutExpired:
        raise SignatureError("checking the signature took too long") from None
