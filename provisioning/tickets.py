"""The token a boot script carries: which script it is (network, farm, node, kernels, when it
was served), signed with the service's key, so what comes back with it (the node's reports,
its kernel download) is tied to a script the service really served (provisioning.reports)."""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from django.conf import settings

from .errors import BootError
from .models import Arch

#: A boot that reports later than this after its script is no longer believed.
TOKEN_HOURS = 24
_SIG_LENGTH = 16  # hex digits of the HMAC-SHA256: 64 bits
NOT_OURS = "this report does not come with a boot script of this service"


@dataclass(frozen=True)
class Ticket:
    """What a token says: the script it came with."""

    issued: int
    network_pk: int
    farmer_id: int | None
    node_pk: int | None
    kernels: dict[str, int]  # architecture -> kernel pk

    @property
    def age(self) -> float:
        return time.time() - self.issued


@functools.lru_cache(maxsize=4)
def _key(secret: str) -> bytes:
    return hashlib.sha256(f"zosboot.boot-report:{secret}".encode()).digest()


def _sign(payload: str) -> str:
    digest = hmac.new(_key(settings.SECRET_KEY), payload.encode(), hashlib.sha256).hexdigest()
    return digest[:_SIG_LENGTH]


def issue(network_pk: int, farmer_id: int | None, node_pk: int | None,
          kernels: dict[str, int], now: float | None = None) -> str:  # fmt: skip
    """The token of a script being served: `<issued>.<network>.<farm>.<node>.<amd64
    kernel>.<arm64 kernel>.<nonce>.<signature>`, numbers in hex (0: none). The nonce makes
    each script's token its own, however many machines of a farm boot in the same second."""
    fields = (
        int(now or time.time()), network_pk, farmer_id or 0, node_pk or 0,
        kernels.get(Arch.AMD64, 0), kernels.get(Arch.ARM64, 0), secrets.randbits(32),
    )  # fmt: skip
    payload = ".".join(f"{value:x}" for value in fields)
    return f"{payload}.{_sign(payload)}"


def read(token: str) -> Ticket:
    """The ticket a token stands for; BootError 403 when it is not one the service made (or
    made so long ago that it is no longer believed)."""
    payload, _, signature = token.rpartition(".")
    parts = payload.split(".")
    if len(parts) != 7 or len(signature) != _SIG_LENGTH:
        raise BootError(403, "this report does not come with a boot script of this service")
    if not hmac.compare_digest(signature, _sign(payload)):
        raise BootError(403, "this report does not come with a boot script of this service")
    try:
        issued, network, farm, node, amd64, arm64, _ = (int(part, 16) for part in parts)
    except ValueError:
        raise BootError(
            403, "this report does not come with a boot script of this service"
        ) from None
    kernels = {arch: pk for arch, pk in ((Arch.AMD64, amd64), (Arch.ARM64, arm64)) if pk}
    ticket = Ticket(issued, network, farm or None, node or None, kernels)
    if not -300 < ticket.age < TOKEN_HOURS * 3600:
        raise BootError(403, "this report comes too late after its boot script")
    return ticket
