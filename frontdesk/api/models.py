from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta

from django.db import models
from django.utils import timezone

from frontdesk.web.roles import ROLES

PREFIX = "fdk_"
VISIBLE = len(PREFIX) + 8  # "fdk_" and 8 characters of the secret, shown in lists to tell tokens apart
LAST_USED_EVERY = timedelta(minutes=1)  # at most one write per token a minute, however busy it is


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


class ApiToken(models.Model):
    """A bearer token for the JSON API. Only its SHA-256 hash is stored: the token itself is
    shown once, when it is created, and cannot be recovered."""

    name = models.CharField(max_length=100)
    role = models.CharField(max_length=10, choices=[(r, r) for r in ROLES])
    prefix = models.CharField(max_length=VISIBLE)
    token_hash = models.CharField(max_length=64, unique=True)
    created_by = models.CharField(max_length=150)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["pk"]

    def __str__(self) -> str:
        return f"token {self.pk} {self.name} ({self.role})"

    @property
    def actor(self) -> str:
        """How the token's actions appear in the audit log."""
        return f"api:{self.name}#{self.pk}"[:150]

    @classmethod
    def issue(cls, name: str, role: str, created_by: str) -> tuple[ApiToken, str]:
        """Create a token; returns the row and the token, which is never available again."""
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}")
        token = PREFIX + secrets.token_urlsafe(32)
        row = cls.objects.create(name=name, role=role, prefix=token[:VISIBLE], token_hash=digest(token),
                                 created_by=created_by)
        return row, token

    @classmethod
    def authenticate(cls, token: str) -> ApiToken | None:
        """The active token matching ``token``. The lookup is by hash, so the database compares
        digests, not secrets; the final comparison is constant-time."""
        if not token.startswith(PREFIX) or len(token) > 200:
            return None
        wanted = digest(token)
        row = cls.objects.filter(token_hash=wanted, revoked_at__isnull=True).first()
        if row is None or not hmac.compare_digest(row.token_hash, wanted):
            return None
        now = timezone.now()
        if row.last_used_at is None or row.last_used_at < now - LAST_USED_EVERY:
            cls.objects.filter(pk=row.pk).update(last_used_at=now)
            row.last_used_at = now
        return row
