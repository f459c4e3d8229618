"""Release signatures checked with ssh-keygen against the allowed signers."""

from pathlib import Path

import pytest

from provisioning.signatures import SignatureError, clean_signature, verify
from provisioning.tests.signing import ReleaseKey


@pytest.fixture
def release(tmp_path, settings) -> ReleaseKey:
    return ReleaseKey.allowed(tmp_path, settings)


def _kernel(tmp_path: Path, content: bytes = b"\x7fkernel bytes") -> Path:
    path = tmp_path / "zero-os-v3.efi"
    path.write_bytes(content)
    return path


def test_a_signed_kernel_verifies_and_names_its_signer(tmp_path, release):
    kernel = _kernel(tmp_path)
    assert verify(kernel, release.sign(kernel)) == "release@zosboot"


def test_a_tampered_kernel_fails(tmp_path, release):
    kernel = _kernel(tmp_path)
    signature = release.sign(kernel)
    kernel.write_bytes(b"\x7fkernel bytes, and a backdoor")
    with pytest.raises(SignatureError, match="does not match the file"):
        verify(kernel, signature)


def test_a_key_not_in_the_allowed_signers_fails(tmp_path, release):
    kernel = _kernel(tmp_path)
    stranger = ReleaseKey.make(tmp_path / "stranger", "mallory@example.org")
    with pytest.raises(SignatureError, match="not by any allowed release signer"):
        verify(kernel, stranger.sign(kernel))


def test_a_signature_for_another_namespace_fails(tmp_path, release):
    kernel = _kernel(tmp_path)
    import subprocess

    subprocess.run(["ssh-keygen", "-q", "-Y", "sign", "-f", str(release.key), "-n", "git",
                    str(kernel)], check=True, capture_output=True)  # fmt: skip
    git_signature = Path(f"{kernel}.sig").read_text()
    with pytest.raises(SignatureError):
        verify(kernel, git_signature)


def test_no_signers_configured_or_no_signature_is_said(tmp_path, settings, release):
    kernel = _kernel(tmp_path)
    with pytest.raises(SignatureError, match="carries no signature"):
        verify(kernel, "")
    settings.ZOSBOOT_RELEASE_SIGNERS = ""
    with pytest.raises(SignatureError, match="ZOSBOOT_RELEASE_SIGNERS"):
        verify(kernel, release.sign(kernel))


@pytest.mark.parametrize("raw", [b"", b"hello", b"\xff" * 10, b"A" * 20000, "; rm -rf /"])
def test_what_is_not_an_ssh_signature_is_refused_before_any_check(raw):
    with pytest.raises(SignatureError, match="not an SSH signature"):
        clean_signature(raw)
