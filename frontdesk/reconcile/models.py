from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone


def new_correlation_id() -> str:
    return uuid.uuid4().hex


class ReconcileRun(models.Model):
    """One reconciliation of one or both providers. ``counts`` holds, per provider, what was
    checked, found, repaired and how many requests it cost."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    QUOTA_RESERVE = "quota_reserve"  # stopped so the monthly quota's reserve stays untouched
    FAILED = "failed"
    PROVIDER_BLOCKED = "provider_blocked"  # the ledger has the lane paused or its circuit open
    BUSY = "busy"  # another full run of the same provider was still going
    INTERRUPTED = "interrupted"  # its process died: no heartbeat for a while
    NO_RULES = "no_rules"
    STATUSES = [(s, s) for s in (RUNNING, SUCCEEDED, QUOTA_RESERVE, FAILED, PROVIDER_BLOCKED,
                                 BUSY, INTERRUPTED, NO_RULES)]

    correlation_id = models.CharField(max_length=32, default=new_correlation_id, db_index=True)
    provider = models.CharField(max_length=20, blank=True)  # circle | kit | "" for both
    trigger = models.CharField(max_length=20, default="command")  # command | schedule
    dry_run = models.BooleanField(default=False)
    scope = models.JSONField(default=dict, blank=True)  # {"customers": [ids]}; {} = everyone
    status = models.CharField(max_length=20, choices=STATUSES, default=RUNNING)
    counts = models.JSONField(default=dict, blank=True)
    requests = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)  # redacted provider messages; never e-mails
    started_at = models.DateTimeField(default=timezone.now)
    heartbeat_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-pk"]
        indexes = [models.Index(fields=["status", "heartbeat_at"], name="reconcile_run_status")]

    def __str__(self) -> str:
        return f"reconcile run {self.pk} {self.status}"


class Drift(models.Model):
    """One difference between what a provider holds and what the customer should have."""

    MISSING_ACCESS = "missing_access"  # a space / space group / access group they should have
    UNEXPECTED_ACCESS = "unexpected_access"  # one the rules name that they should not have
    WRONG_TAGS = "wrong_tags"  # a rule-named Circle member tag or Kit tag missing or extra
    WRONG_FIELDS = "wrong_fields"  # a rule-named Kit custom field with the wrong value
    MEMBER_REMOVED = "member_removed"  # the linked Circle member / Kit subscriber is gone
    KINDS = [(k, k) for k in (MISSING_ACCESS, UNEXPECTED_ACCESS, WRONG_TAGS, WRONG_FIELDS, MEMBER_REMOVED)]

    run = models.ForeignKey(ReconcileRun, on_delete=models.CASCADE, related_name="drifts")
    customer = models.ForeignKey("customers.Customer", on_delete=models.CASCADE, related_name="+")
    provider = models.CharField(max_length=20)
    kind = models.CharField(max_length=30, choices=KINDS)
    target_kind = models.CharField(max_length=30)  # spaces, member_tags, tags, fields, member, …
    target_id = models.CharField(max_length=100)  # a numeric id, a field key or a member id
    detail = models.CharField(max_length=200, blank=True)  # missing | unexpected | state=… | values
    repaired = models.BooleanField(default=False)  # applied corrected and a sync queued
    detected_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["pk"]
        indexes = [
            models.Index(fields=["customer", "detected_at"], name="drift_customer"),
            models.Index(fields=["kind", "detected_at"], name="drift_kind"),
        ]

    def __str__(self) -> str:
        return f"{self.provider} {self.kind} {self.target_kind} {self.target_id}"


class ProviderUsage(models.Model):
    """Requests sent to a provider per calendar month (UTC) and source, so reconciliation can
    stay inside a monthly quota. Reconciliation always counts itself (source ``reconcile``);
    delivery counts once its client calls :func:`frontdesk.reconcile.usage.count_request`."""

    provider = models.CharField(max_length=20)
    month = models.CharField(max_length=7)  # YYYY-MM
    source = models.CharField(max_length=20, default="reconcile")
    requests = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["provider", "month", "source"], name="one_usage_row_per_month")
        ]

    def __str__(self) -> str:
        return f"{self.provider} {self.month} {self.source}: {self.requests}"
