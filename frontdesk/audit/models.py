from __future__ import annotations

from typing import Any

from django.db import models


class AuditEntry(models.Model):
    """Append-only record of who changed what: people, commands, deploys. Values that are
    secrets are never stored here, only whether they changed."""

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.CharField(max_length=150)  # a user name, "cli", "system", "deploy"
    action = models.CharField(max_length=60, db_index=True)
    target = models.CharField(max_length=200, blank=True)
    before = models.JSONField(default=dict, blank=True)
    after = models.JSONField(default=dict, blank=True)
    reason = models.TextField(blank=True)

    class Meta:
        ordering = ["-at", "-pk"]

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            raise ValueError("Audit entries are append-only.")
        super().save(*args, **kwargs)


def record(actor: str, action: str, target: str = "", *, before: dict[str, Any] | None = None,
           after: dict[str, Any] | None = None, reason: str = "") -> AuditEntry:
    return AuditEntry.objects.create(actor=actor, action=action, target=target, before=before or {},
                                     after=after or {}, reason=reason)


class ConfigSnapshot(models.Model):
    """The configuration fingerprint seen at a start: which settings are set and hashes of
    their values, the rules version and the code version. Never the values themselves."""

    at = models.DateTimeField(auto_now_add=True)
    digest = models.CharField(max_length=64)
    fingerprint = models.JSONField()

    class Meta:
        ordering = ["-pk"]
