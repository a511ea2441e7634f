from __future__ import annotations

from django.db import models


class Event(models.Model):
    """A verified provider event, stored with its raw body before anything acts on it."""

    RECEIVED, PROCESSED, IGNORED, FAILED = "received", "processed", "ignored", "failed"
    STATUSES = [(s, s) for s in (RECEIVED, PROCESSED, IGNORED, FAILED)]

    provider = models.CharField(max_length=20)
    event_id = models.CharField(max_length=255)
    type = models.CharField(max_length=100, db_index=True)
    created = models.DateTimeField(null=True)  # the provider's event time, not delivery time
    livemode = models.BooleanField(default=False)
    received_at = models.DateTimeField(db_index=True)
    correlation_id = models.CharField(max_length=32, db_index=True)
    payload = models.TextField()  # the raw body exactly as signed
    status = models.CharField(max_length=10, choices=STATUSES, default=RECEIVED)
    status_reason = models.CharField(max_length=100, blank=True)
    customer = models.ForeignKey(
        "customers.Customer", null=True, blank=True, on_delete=models.SET_NULL, related_name="events"
    )
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["provider", "event_id"], name="one_event_per_provider_id")
        ]

    def __str__(self) -> str:
        return f"{self.provider} {self.event_id} {self.type}"


class IntakeLog(models.Model):
    """One row per webhook request, accepted or not: the first place to look when a provider
    says it delivered and frontdesk says it did not. Holds no body and no secrets."""

    provider = models.CharField(max_length=20)
    received_at = models.DateTimeField(db_index=True)
    status_code = models.PositiveSmallIntegerField()
    reason = models.CharField(max_length=50)
    latency_ms = models.FloatField()
    source_ip = models.GenericIPAddressField(null=True, blank=True)
    event_id = models.CharField(max_length=255, blank=True)
    event_type = models.CharField(max_length=100, blank=True)
    correlation_id = models.CharField(max_length=32, blank=True)


class BackfillState(models.Model):
    """Where an interrupted backfill resumes: the phase and the last object id it finished."""

    name = models.CharField(max_length=50, primary_key=True)
    since = models.DateTimeField(null=True, blank=True)
    phase = models.CharField(max_length=20, blank=True)  # customers | subscriptions | events | done
    cursor = models.CharField(max_length=255, blank=True)
    counts = models.JSONField(default=dict)
    updated_at = models.DateTimeField(auto_now=True)
