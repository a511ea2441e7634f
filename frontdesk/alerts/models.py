from __future__ import annotations

from django.db import models


class Alert(models.Model):
    """One occurrence of an alert condition, from the moment it starts to when it resolves."""

    FIRING, RESOLVED = "firing", "resolved"

    key = models.CharField(max_length=100)  # rule name, plus the provider for per-provider rules
    rule = models.CharField(max_length=50)
    status = models.CharField(max_length=10, default=FIRING)
    summary = models.TextField()
    started_at = models.DateTimeField()
    last_sent_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)
    notifications = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-started_at"]
        constraints = [
            models.UniqueConstraint(fields=["key"], condition=models.Q(status="firing"), name="one_firing_alert_per_key")
        ]


class EvaluationSlot(models.Model):
    """When the next alert evaluation is due. Every worker tries to take it with a conditional
    UPDATE, so the rules run once per interval however many workers there are."""

    name = models.CharField(max_length=50, primary_key=True)
    next_at = models.DateTimeField()
