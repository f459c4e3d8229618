"""A release key for tests: what CI does with `ssh-keygen -Y sign`, and the allowed-signers
file the deployment names in ZOSBOOT_RELEASE_SIGNERS."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from provisioning.signatures import NAMESPACE


@dataclass
class ReleaseKey:
    key: Path
    principal: str

    @classmethod
    def make(cls, directory: Path, principal: str = "release@zosboot") -> ReleaseKey:
        directory.mkdir(parents=True, exist_ok=True)
        key = directory / "release_key"
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", principal, "-f", str(key)],
            check=True,
        )
        return cls(key, principal)

    @classmethod
    def allowed(cls, directory: Path, settings) -> ReleaseKey:
        """A new key, the only allowed signer of this test (ZOSBOOT_RELEASE_SIGNERS)."""
        key = cls.make(directory / "keys")
        signers = directory / "allowed_signers"
        signers.write_text(key.allowed_line())
        settings.ZOSBOOT_RELEASE_SIGNERS = str(signers)
        return key

    def allowed_line(self) -> str:
        public = self.key.with_suffix(".pub").read_text().split()
        return f'{self.principal} namespaces="{NAMESPACE}" {public[0]} {public[1]}\n'

    def sign(self, path: Path) -> str:
        """The exact command the README gives CI; the signature's text."""
        subprocess.run(
            ["ssh-keygen", "-q", "-Y", "sign", "-f", str(self.key), "-n", NAMESPACE, str(path)],
            check=True, capture_output=True,
        )  # fmt: skip
        signature = Path(f"{path}.sig")
        text = signature.read_text()
        signature.unlink()
        return text
