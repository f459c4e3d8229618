"""The admin's kernel forms.

Adding: the name comes from the file unless one is typed, the kernel is registered through
the one registration path (`provisioning.kernels.register`: name rules, empty files,
architecture, signature, store), and a file already sent is kept when the form comes back with
an error (a browser cannot refill a file field, and a kernel is 50-100 MB to send again).

Changing: a kernel is immutable, so only its notes change, and a release signature may be
given (or a non-verifying one replaced) for the same bytes.
"""

from __future__ import annotations

import contextlib
import secrets
import shutil
import tempfile
import time
from pathlib import Path

from django import forms
from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError
from django.core.files import File
from django.core.files.uploadedfile import UploadedFile

from .. import kernels, signatures
from ..models import Kernel

SALT = "zosboot.kernel-upload"
# A kept upload nobody came back for is removed after this long (at the next upload).
KEEP_SECONDS = 24 * 3600

SIGNATURE_HELP = (
    "Its release signature (.sig, from ssh-keygen -Y sign -n zosboot-kernel), checked before "
    "it is stored. Networks that need signed kernels boot only kernels with one that verifies."
)

# Which field a registration refusal is shown next to, by its code.
_FIELD_OF = {
    "arch_mismatch": "arch",
    "arch": "arch",
    "signature": "signature_file",
    "empty": "file",
}


def staging_dir() -> Path:
    return Path(settings.ZOSBOOT_RUN_DIR) / "kernel-uploads"


def _read_signature(given) -> bytes | None:
    return given.read(signatures.MAX_SIGNATURE_BYTES + 1) if given else None


class KernelForm(forms.ModelForm):
    """Adding a kernel."""

    kept = forms.CharField(required=False, widget=forms.HiddenInput)
    signature_file = forms.FileField(
        label="Release signature", required=False, help_text=SIGNATURE_HELP
    )

    #: Who adds it, for its record (set by KernelAdmin.get_form).
    user = None

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
        # clean() asks for a file unless one was kept from the last try.
        self.fields["file"].required = False
        # Not sent (a script posting the form): what the file's header says, else amd64.
        self.fields["arch"].required = False
        self.kept_path: Path | None = None

    def clean(self) -> dict:
        data = super().clean()
        upload = data.get("file")
        if not upload:
            upload = self._kept_upload()
            if upload is None:
                self.add_error("file", "Choose the kernel file to upload.")
                return data
            data["file"] = upload
        if not data.get("name"):
            data["name"] = Path(upload.name).name
        return data

    def _post_clean(self) -> None:
        # The model's own checks (unique name) first; then, if all is well, the registration
        # itself, whose refusals are shown next to their field. The kernel is in the store and
        # the database when the form is valid: the admin has nothing left to save.
        super()._post_clean()
        if self.errors:
            return
        data = self.cleaned_data
        try:
            with _on_disk(data["file"]) as path:
                kernel, _ = kernels.register(
                    path, data["name"], arch=data.get("arch") or None,
                    signature=_read_signature(data.get("signature_file")),
                    notes=data.get("notes", ""), user=self.user, via="admin",
                )  # fmt: skip
        except kernels.KernelConflict as exc:
            self.add_error("name", str(exc))
            return
        except ValidationError as exc:
            code = exc.error_list[0].code
            self.add_error(_FIELD_OF.get(code, "name"), exc.messages[0])
            return
        self.instance = kernel

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


class KernelChangeForm(forms.ModelForm):
    """Changing a kernel: its notes, and a release signature for the same bytes (taken when
    the kernel has none, or one that does not verify now)."""

    signature_file = forms.FileField(
        label="Release signature",
        required=False,
        help_text=SIGNATURE_HELP + " Replaces the kernel's signature only when that one does "
        "not verify now.",
    )

    class Meta:
        model = Kernel
        fields = ("notes",)

    def clean(self) -> dict:
        data = super().clean()
        raw = _read_signature(data.get("signature_file"))
        data["signed"] = None
        if raw:
            try:
                data["signed"] = signatures.checked(Path(self.instance.file.path), raw)
            except signatures.SignatureError as exc:
                self.add_error("signature_file", exc.messages[0])
        return data


@contextlib.contextmanager
def _on_disk(upload):
    """A path to the uploaded bytes: the upload's own temporary file, or a copy."""
    if hasattr(upload, "temporary_file_path"):
        yield Path(upload.temporary_file_path())
        return
    if not isinstance(upload, UploadedFile):
        yield Path(upload.file.name)  # kept from an earlier try: a file of its own already
        return
    with tempfile.NamedTemporaryFile(dir=kernels.incoming_dir(), prefix="admin-") as copy:
        upload.seek(0)
        shutil.copyfileobj(upload, copy, 1024 * 1024)
        copy.flush()
        upload.seek(0)
        yield Path(copy.name)


def _remove_old(directory: Path) -> None:
    cutoff = time.time() - KEEP_SECONDS
    for path in directory.iterdir():
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
        except FileNotFoundError:
            pass
