"""The admin's kernel upload form: the name comes from the file unless one is typed, and a
file already sent is kept when the form comes back with an error (a browser cannot refill a
file field, and a kernel is 50-100 MB to send again)."""

from __future__ import annotations

import secrets
import shutil
import tempfile
import time
from pathlib import Path

from django import forms
from django.conf import settings
from django.core import signing
from django.core.files import File

from .. import signatures
from ..models import Arch, Kernel
from ..models.kernels import ARCH_HEADER_BYTES, arch_mismatch, detect_arch
from ..validators import validate_kernel_name

SALT = "zosboot.kernel-upload"
# A kept upload nobody came back for is removed after this long (at the next upload).
KEEP_SECONDS = 24 * 3600


def staging_dir() -> Path:
    return Path(settings.ZOSBOOT_RUN_DIR) / "kernel-uploads"


class KernelForm(forms.ModelForm):
    kept = forms.CharField(required=False, widget=forms.HiddenInput)
    signature_file = forms.FileField(
        label="Release signature",
        required=False,
        help_text="Its release signature (.sig, from ssh-keygen -Y sign -n zosboot-kernel), "
        "checked against the release signers before the kernel is stored. Networks that need "
        "signed kernels boot only kernels with one that verifies.",
    )

    class Meta:
        model = Kernel
        fields = ("name", "arch", "file", "notes")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["name"].required = False
        self.fields["name"].help_text = (
            "File name nodes download it as, e.g. zero-os-development-amd64.efi. "
            "Leave empty to use the uploaded file's name."
        )
        # On the add page clean() asks for a file unless one was kept from the last try.
        self.fields["file"].required = False
        # Not sent (a script posting the form): what the file's header says, else amd64.
        self.fields["arch"].required = False
        self.kept_path: Path | None = None

    def clean(self) -> dict:
        data = super().clean()
        upload = data.get("file")
        if not upload and self.instance.pk is None:
            upload = self._kept_upload()
            if upload is None:
                self.add_error("file", "Choose the kernel file to upload.")
                return data
            data["file"] = upload
        if not data.get("name") and upload:
            name = Path(upload.name).name
            try:
                validate_kernel_name(name)
            except forms.ValidationError:
                self.add_error("name", f"{name!r} cannot be a kernel name: type one.")
                return data
            data["name"] = name
        if upload:
            self._check_arch(upload, data.get("name") or Path(upload.name).name, data)
            self._check_signature(upload, data)
        return data

    def _check_signature(self, upload, data: dict) -> None:
        """A signature given with the file must verify against it now: the kernel is stored
        with its signer, or not at all."""
        given = data.get("signature_file")
        data["signed"] = ("", "")
        if not given:
            return
        raw = given.read(signatures.MAX_SIGNATURE_BYTES + 1)
        with tempfile.NamedTemporaryFile(prefix="kernel-", suffix=".efi") as copy:
            upload.seek(0)
            shutil.copyfileobj(upload, copy, 1024 * 1024)
            copy.flush()
            upload.seek(0)
            try:
                data["signed"] = signatures.checked(Path(copy.name), raw)
            except signatures.SignatureError as exc:
                self.add_error("signature_file", exc.messages[0])

    def apply_signature(self, kernel: Kernel) -> None:
        """Called before the kernel is saved: what _check_signature found."""
        kernel.signature, kernel.signer = self.cleaned_data.get("signed") or ("", "")

    def _check_arch(self, upload, name: str, data: dict) -> None:
        """Refuse a file whose header says another architecture than the one chosen."""
        upload.seek(0)
        detected = detect_arch(upload.read(ARCH_HEADER_BYTES))
        upload.seek(0)
        if not data.get("arch"):
            data["arch"] = detected or Arch.AMD64
        refusal = arch_mismatch(name, data["arch"], detected)
        if refusal is not None:
            self.add_error("arch", f"{refusal.messages[0]}: choose {detected}.")

    def full_clean(self) -> None:
        super().full_clean()
        upload = self.files.get("file") if self.is_bound else None
        if self._errors and upload is not None:
            self._keep(upload)

    def _keep(self, upload) -> None:
        """Put the upload aside and name it in the re-shown form."""
        directory = staging_dir()
        directory.mkdir(parents=True, exist_ok=True)
        _remove_old(directory)
        original = Path(upload.name).name
        kept = directory / f"{secrets.token_hex(8)}-{original}"
        upload.seek(0)
        with kept.open("xb") as out:
            shutil.copyfileobj(upload, out, 1024 * 1024)
        self.data = self.data.copy()
        self.data["kept"] = signing.dumps(kept.name, salt=SALT)
        self._say_kept(original)

    def _say_kept(self, original: str) -> None:
        said = (
            f"Kept from your last try: {original}. Leave this empty to use it, or choose "
            "another file."
        )
        # The bound field copied the help text when the form was cleaned: tell both.
        self.fields["file"].help_text = self["file"].help_text = said

    def discard_kept(self) -> None:
        """Once saved into the store, the kept copy goes."""
        if self.kept_path is not None:
            self.cleaned_data["file"].close()
            self.kept_path.unlink(missing_ok=True)

    def _kept_upload(self) -> File | None:
        token = self.cleaned_data.get("kept")
        if not token:
            return None
        try:
            name = signing.loads(token, salt=SALT, max_age=KEEP_SECONDS)
        except signing.BadSignature:
            return None
        path = staging_dir() / Path(name).name
        if not path.is_file():
            return None
        original = name.split("-", 1)[1]
        self.kept_path = path
        self._say_kept(original)
        return File(path.open("rb"), name=original)


def _remove_old(directory: Path) -> None:
    cutoff = time.time() - KEEP_SECONDS
    for path in directory.iterdir():
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
        except FileNotFoundError:
            pass
