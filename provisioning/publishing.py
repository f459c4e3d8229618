"""The build pipeline's two publishing calls, unchanged from the service zosboot replaces:

    curl -b "token=$TOKEN" -X POST -F "kernel=@$kernel" https://HOST/api/kernel
    curl -b "token=$TOKEN" https://HOST/api/symlink/$linkname/$kernel

Answers are one short line of text a CI log can show; nothing is stored unless the token may
publish and the kernel is whole, named right and new (or the very same bytes again).
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST, require_safe

from . import uploads
from .auth import TokenRefused, authorize
from .kernels import KernelConflict
from .models import ApiToken, BranchLink, Kernel
from .validators import NAME_REFUSALS, validate_kernel_name


def _text(message: str, status: int = 200) -> HttpResponse:
    response = HttpResponse(message + "\n", content_type="text/plain; charset=utf-8", status=status)
    response._has_been_logged = status < 500  # answered on purpose; the reason is the body
    return response


@csrf_exempt
@require_POST
def publish_kernel(request: HttpRequest) -> HttpResponse:
    """`POST /api/kernel`, multipart field `kernel`: a new build into the store (with its
    release signature in the optional field `signature`)."""
    try:
        token = authorize(request, ApiToken.Scope.PUBLISH, cookie=True)
        upload, fields = uploads.receive(request)
    except TokenRefused as refused:
        return _text(refused.message, refused.status)
    except uploads.UploadRefused as refused:
        return _text(str(refused), refused.status)
    try:
        kernel, created = uploads.register(
            upload, via=token.label, signature=fields.get(uploads.SIGNATURE_FIELD)
        )
    except ValidationError as exc:
        return _text(f"refused {upload.name!r}: {exc.messages[0]}", 400)
    except KernelConflict as exc:
        return _text(str(exc), 409)
    if not created:
        return _text(
            f"{kernel.name} was already published with these bytes ({kernel.signature_label})"
        )
    return _text(f"published {kernel.name} ({kernel.size} bytes, sha256 {kernel.sha256})", 201)


@require_safe
def point_link(request: HttpRequest, link: str, kernel: str) -> HttpResponse:
    """`GET /api/symlink/<link>/<kernel>`: point a branch link (made on first use)."""
    try:
        token = authorize(request, ApiToken.Scope.PUBLISH, cookie=True)
    except TokenRefused as refused:
        return _text(refused.message, refused.status)
    try:
        validate_kernel_name(kernel)
    except ValidationError as exc:
        return _text(exc.messages[0], 400)
    target = Kernel.objects.filter(name=kernel).first()
    if target is None:
        return _text(f"no kernel named {kernel}; publish it first (POST /api/kernel)", 404)
    try:
        _, change = BranchLink.point(link, target, note="api/symlink", via=token.label)
    except ValidationError as exc:
        malformed = exc.error_list[0].code in NAME_REFUSALS
        return _text(exc.messages[0], 400 if malformed else 409)
    if change is None:
        return _text(f"{link} already points at {kernel}; nothing changed")
    return _text(f"{link} -> {kernel} (was {change.previous_name or 'new'})")
