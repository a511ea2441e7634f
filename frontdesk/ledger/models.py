from __future__ import annotations

from django.db import models
from django.db.models import Q


class JobState(models.TextChoices):
    QUEUED = "queued"
    RUNNING = "running"
    RETRYING = "retrying"
    SUCCEEDED = "succeeded"
    NEEDS_REVIEW = "needs_review"
    CANCELLED = "cancelled"


PENDING_STATES = (JobState.QUEUED, JobState.RETRYING)
FINAL_STATES = (JobState.SUCCEEDED, JobState.CANCELLED)


class JobQuerySet(models.QuerySet["Job"]):
    def pending(self) -> JobQuerySet:
        return self.filter(state__in=PENDING_STATES)

    def running(self) -> JobQuerySet:
        return self.filter(state=JobState.RUNNING)

    def needs_review(self) -> JobQuerySet:
        return self.filter(state=JobState.NEEDS_REVIEW)


class Job(models.Model):
    """One external action in the durable ledger. A job converges one customer's state in one
    provider to what their entitlements say, so running it twice is harmless."""

    kind = models.CharField(max_length=50)
    provider = models.CharField(max_length=20, db_index=True)
    customer = models.ForeignKey(
        "customers.Customer", null=True, blank=True, on_delete=models.SET_NULL, related_name="jobs"
    )
    event = models.ForeignKey("intake.Event", null=True, blank=True, on_delete=models.SET_NULL, related_name="jobs")
    idempotency_key = models.CharField(max_length=200, unique=True)
    # Jobs sharing a concurrency key never run at the same time, and at most one waits.
    concurrency_key = models.CharField(max_length=200, null=True, blank=True)
    state = models.CharField(max_length=20, choices=JobState.choices, default=JobState.QUEUED)
    # Higher runs first: alerts must not wait behind the backlog they are about.
    priority = models.SmallIntegerField(default=0)
    payload = models.JSONField(default=dict, blank=True)  # kind-specific arguments (no secrets)
    attempts = models.PositiveIntegerField(default=0)
    run_at = models.DateTimeField()
    deadline = models.DateTimeField()  # retrying stops here and the job goes to review
    lease_owner = models.CharField(max_length=100, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    correlation_id = models.CharField(max_length=32, db_index=True)
    reason_code = models.CharField(max_length=60, blank=True)
    last_error = models.TextField(blank=True)  # redacted: no tokens, no e-mails
    rerun_requested = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    # Set by the claim, not stored: the job's provider lane was open with no recent failures.
    lane_clean = False

    objects = JobQuerySet.as_manager()

    class Meta:
        indexes = [
            # The worker's claim query: due jobs in run_at order.
            models.Index(fields=["-priority", "run_at"], name="job_due", condition=Q(state__in=["queued", "retrying"])),
            models.Index(fields=["lease_expires_at"], name="job_leased", condition=Q(state="running")),
            models.Index(fields=["concurrency_key", "state"], name="job_concurrency"),
            models.Index(fields=["state", "provider"], name="job_state_provider"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["concurrency_key"],
                condition=Q(state__in=["queued", "retrying"]),
                name="one_pending_job_per_concurrency_key",
            )
        ]

    def __str__(self) -> str:
        return f"job {self.pk} {self.kind} {self.state}"


class Attempt(models.Model):
    """One try of a job: written when it starts, completed when it ends, so a crash leaves a
    visible unfinished attempt instead of nothing."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="attempt_rows")
    number = models.PositiveIntegerField()
    worker = models.CharField(max_length=100)
    started_at = models.DateTimeField()
    duration_ms = models.FloatField(null=True, blank=True)
    outcome = models.CharField(max_length=20, blank=True)  # succeeded|transient|permanent|paused|lost
    http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    reason_code = models.CharField(max_length=60, blank=True)
    message = models.TextField(blank=True)

    class Meta:
        ordering = ["job_id", "number"]


class ProviderState(models.Model):
    """Health of one provider lane as every worker process sees it: an open circuit, a pause for
    bad credentials, or a rate-limit wait. Jobs of a blocked provider wait without spending
    attempts."""

    OK, CIRCUIT_OPEN, PAUSED, RATE_LIMITED = "ok", "circuit_open", "paused", "rate_limited"

    provider = models.CharField(max_length=20, primary_key=True)
    status = models.CharField(max_length=20, default=OK)
    reason_code = models.CharField(max_length=60, blank=True)
    message = models.TextField(blank=True)
    blocked_until = models.DateTimeField(null=True, blank=True)
    consecutive_failures = models.PositiveIntegerField(default=0)
    cooldown_seconds = models.FloatField(default=0)
    updated_at = models.DateTimeField(auto_now=True)


class RateSlot(models.Model):
    """The next free request slot of a provider's shared rate limit (a theoretical arrival time,
    as in GCRA), as Unix seconds. Workers reserve slots with one atomic UPDATE."""

    provider = models.CharField(max_length=20, primary_key=True)
    next_at = models.FloatField(default=0)


class WorkerHeartbeat(models.Model):
    worker_id = models.CharField(max_length=100, primary_key=True)
    hostname = models.CharField(max_length=200)
    pid = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    seen_at = models.DateTimeField(db_index=True)
    jobs_done = models.PositiveIntegerField(default=0)
