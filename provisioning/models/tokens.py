"""API tokens: how scripts and the build pipeline prove who they are.

A token is shown once, when it is made; the service keeps its sha256 only and compares in
constant time. The public prefix finds the row without a table scan. Tokens carry scopes,
can be revoked, and note when they were last used.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, models, transaction
from django.utils import timezone

_TOKEN_RE = re.compile(r"zbt_([0-9a-f]{12})_([A-Za-z0-9_-]{40,64})")
# last_used_at is written at most this often per token (it costs an UPDATE per request).
_USE_RESOLUTION = timedelta(minutes=1)


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class ApiToken(models.Model):
    """A named credential for automation (the build pipeline, ops scripts), with scopes."""

    class Scope(models.TextChoices):
        PUBLISH = "publish", "publish: upload kernels and point branch links"
        NETWORKS = "networks", "networks: switch and roll back networks"
        NODES = "nodes", "nodes: manage farms and nodes"

    name = models.CharField(max_length=100, unique=True, help_text="Who uses it, e.g. zos-ci.")
    prefix = models.CharField(max_length=12, unique=True, editable=False)
    digest = models.CharField(max_length=64, editable=False)
    scopes = models.CharField(
        max_length=100, help_text="What it may do: publish, networks, nodes (comma-separated)."
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["name"]
        verbose_name = "API token"

    def __str__(self) -> str:
        return self.name

    @property
    def scope_list(self) -> list[str]:
        return [scope for scope in self.scopes.split(",") if scope]

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def allows(self, scope: str) -> bool:
        return self.active and scope in self.scope_list

    @property
    def label(self) -> str:
        """How audit rows name what acted."""
        return f"API token {self.name}"

    @classmethod
    def issue(cls, name: str, scopes: list[str], user=None) -> tuple[ApiToken, str]:
        """Make a token; (row, the token itself), which is never shown again."""
        unknown = sorted(set(scopes) - set(cls.Scope.values))
        if unknown or not scopes:
            raise ValueError(
                f"unknown scope {', '.join(unknown)}" if unknown else "a token needs a scope"
            )
        for _ in range(5):
            prefix, secret = secrets.token_hex(6), secrets.token_urlsafe(36)
            token = cls(
                name=name,
                prefix=prefix,
                digest=_digest(secret),
                scopes=",".join(scope for scope in cls.Scope.values if scope in scopes),
                created_by=user if user is not None and user.is_authenticated else None,
            )
            try:
                with transaction.atomic():
                    token.save()
            except IntegrityError:
                if cls.objects.filter(name=name).exists():
                    raise ValueError(f"a token named {name} exists already") from None
                continue  # the random prefix was taken: draw again
            return token, f"zbt_{prefix}_{secret}"
        raise RuntimeError("could not draw a free token prefix")

    @classmethod
    def authenticate(cls, presented: str) -> ApiToken | None:
        """The active token `presented` is, or None."""
        match = _TOKEN_RE.fullmatch(presented.strip())
        if match is None:
            return None
        token = cls.objects.filter(prefix=match.group(1)).first()
        if token is None or not hmac.compare_digest(token.digest, _digest(match.group(2))):
            return None
        if not token.active:
            return None
        now = timezone.now()
        if token.last_used_at is None or now - token.last_used_at > _USE_RESOLUTION:
            cls.objects.filter(pk=token.pk).update(last_used_at=now)
            token.last_used_at = now
        return token

    def revoke(self) -> None:
        if self.revoked_at is None:
            self.revoked_at = timezone.now()
            ApiToken.objects.filter(pk=self.pk).update(revoked_at=self.revoked_at)
