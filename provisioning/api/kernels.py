"""Kernels and branch links: list, upload (checked against the pipeline's sha256), delete
when unused, which nodes run one; point and roll back links."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db.models import ProtectedError
from ninja import Status

from .. import kernels, running, uploads
from ..kernels import KernelConflict
from ..models import BranchLink, Kernel, Network
from ..validators import NAME_REFUSALS
from . import api, can_publish, can_read, via
from .lookups import _kernel, _link
from .schemas import (
    ChangeOut,
    KernelName,
    KernelOut,
    LinkName,
    LinkOut,
    Message,
    NodeRunning,
    PointIn,
    answers,
)

_KERNELS = Kernel.objects.prefetch_related(
    "networks", "networks_arm64", "links__networks", "links__networks_arm64"
)


@api.get("/kernels", response=answers(list[KernelOut]), auth=can_read, tags=["kernels"])
def list_kernels(request):
    return [KernelOut.of(kernel) for kernel in _KERNELS.all()]


@api.get("/kernels/{name}", response=answers(KernelOut), auth=can_read, tags=["kernels"])
def get_kernel(request, name: KernelName):
    _kernel(name)
    return KernelOut.of(_KERNELS.get(name=name))


_UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["kernel", "sha256"],
                    "properties": {
                        "kernel": {
                            "type": "string",
                            "format": "binary",
                            "description": "The kernel file; the name it is sent under is kept.",
                        },
                        "sha256": {
                            "type": "string",
                            "pattern": "^[0-9a-f]{64}$",
                            "description": "The sha256 the pipeline computed; checked.",
                        },
                        "arch": {
                            "type": "string",
                            "enum": ["amd64", "arm64"],
                            "description": "What it is built for (default: what its header "
                            "says, else amd64); a header that says otherwise is refused.",
                        },
                        "signature": {
                            "type": "string",
                            "description": "The release signature (ssh-keygen -Y sign -n "
                            "zosboot-kernel), as text or a file; checked against the release "
                            "signers before anything is stored.",
                        },
                    },
                }
            }
        },
    }
}


@api.post(
    "/kernels",
    response=answers(
        {201: KernelOut, 200: KernelOut, 400: Message, 409: Message, 411: Message, 413: Message}
    ),
    auth=can_publish,
    tags=["kernels"],
    openapi_extra=_UPLOAD_BODY,
)
def upload_kernel(request):
    """Upload a kernel; the service checks it against the sha256 the pipeline computed.

    The body is read here, not by the framework: it streams into the store as it arrives."""
    try:
        upload, fields = uploads.receive(request)
    except uploads.UploadRefused as refused:
        return Status(refused.status, {"detail": str(refused)})
    expected = (fields.get("sha256") or "").strip().lower()
    if upload.sha256 != expected:
        upload.discard()
        return Status(400, {"detail": f"the upload's sha256 is {upload.sha256}, not {expected!r}"})
    try:
        arch = (fields.get("arch") or "").strip() or None
        stored, created = uploads.register(
            upload, via=via(request), arch=arch, signature=fields.get("signature")
        )
    except ValidationError as exc:
        return Status(400, {"detail": exc.messages[0]})
    except KernelConflict as exc:
        return Status(409, {"detail": str(exc)})
    return Status((201 if created else 200), KernelOut.of(_KERNELS.get(pk=stored.pk)))


@api.delete(
    "/kernels/{name}",
    response=answers({204: None, 409: Message}),
    auth=can_publish,
    tags=["kernels"],
)
def delete_kernel(request, name: KernelName, force: bool = False):
    """Delete a kernel nothing uses (no network, link or node points at it). A kernel a
    network would roll back to is kept unless `force` says to lose that rollback."""
    kernel = _kernel(name)
    targets = Network.objects.rolling_back_to(kernel)
    if targets and not force:
        slugs = ", ".join(n.slug for n in targets)
        return Status(409, {"detail": f"{name} is what {slugs} would roll back to; "
                                      "give force=true to delete it anyway"})  # fmt: skip
    try:
        kernels.remove(kernel, via=via(request))
    except ProtectedError as exc:
        users = ", ".join(sorted(str(obj) for obj in exc.protected_objects))
        return Status(409, {"detail": f"{name} is in use by {users}"})
    return Status(204, None)


@api.get(
    "/kernels/{name}/nodes", response=answers(list[NodeRunning]), auth=can_read, tags=["kernels"]
)
def kernel_nodes(request, name: KernelName):
    """The machines whose latest kernel download was this kernel, and since when."""
    _kernel(name)
    return [
        NodeRunning(mac=row.mac, farm=row.farmer_id, client_ip=row.client_ip,
                    since=row.kernel_since)
        for row in running.nodes_running(name)
    ]  # fmt: skip


@api.get("/links", response=answers(list[LinkOut]), auth=can_read, tags=["links"])
def list_links(request):
    return [LinkOut(name=link.name, kernel=link.kernel.name)
            for link in BranchLink.objects.select_related("kernel")]  # fmt: skip


@api.put(
    "/links/{name}",
    response=answers({200: LinkOut, 409: Message}),
    auth=can_publish,
    tags=["links"],
)
def point_link(request, name: LinkName, body: PointIn):
    """Point a branch link at a kernel (made on first use)."""
    try:
        link, _ = BranchLink.point(name, _kernel(body.kernel), note="api", via=via(request))
    except ValidationError as exc:
        malformed = exc.error_list[0].code in NAME_REFUSALS
        return Status(400 if malformed else 409, {"detail": exc.messages[0]})
    return Status(200, LinkOut(name=link.name, kernel=link.kernel.name))


@api.post(
    "/links/{name}/rollback",
    response=answers({200: LinkOut, 409: Message}),
    auth=can_publish,
    tags=["links"],
)
def rollback_link(request, name: KernelName):
    link = _link(name)
    try:
        link.rollback(via=via(request))
    except BranchLink.NoPrevious as exc:
        return Status(409, {"detail": str(exc)})
    except ValidationError as exc:  # a follower cannot boot the previous build
        return Status(409, {"detail": " ".join(exc.messages)})
    return Status(200, LinkOut(name=link.name, kernel=link.kernel.name))


@api.get("/links/{name}/changes", response=answers(list[ChangeOut]), auth=can_read, tags=["links"])
def link_changes(request, name: KernelName):
    return [ChangeOut.of(c) for c in _link(name).changes.select_related("changed_by")]
