"""What a person can do to the ledger and to access, shared by the admin screens, the JSON
API and the commands. Each action checks its input, records an audit entry (who, what, when,
before, after, why) and says what it did."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone

from frontdesk.audit.models import record
from frontdesk.customers import overrides
from frontdesk.customers.models import Customer, Override
from frontdesk.intake.models import Event
from frontdesk.intake.processing import HANDLED_TYPES
from frontdesk.ledger.enqueue import enqueue
from frontdesk.ledger.models import Job, JobState

RETRYABLE = (JobState.NEEDS_REVIEW, JobState.RETRYING, JobState.CANCELLED, JobState.QUEUED)
CANCELLABLE = (JobState.QUEUED, JobState.RETRYING, JobState.NEEDS_REVIEW)


class ActionError(ValueError):
    """The action cannot be done; the message says why, for the person who asked."""


def _job_state(job: Job) -> dict[str, Any]:
    return {"state": job.state, "reason_code": job.reason_code, "attempts": job.attempts}


def retry_job(job: Job, actor: str, reason: str = "") -> Job:
    """Run a job again now, with a fresh retry deadline."""
    if job.state not in RETRYABLE:
        raise ActionError(f"job {job.pk} is {job.state}; only jobs that are not running or done can be retried")
    now = timezone.now()
    before = _job_state(job)
    try:
        with transaction.atomic():
            updated = Job.objects.filter(pk=job.pk, state=job.state).update(
                state=JobState.QUEUED, run_at=now, deadline=now + (job.deadline - job.created_at),
                finished_at=None, updated_at=now)
    except IntegrityError:
        # A newer job for this customer and provider already waits, and it reads the newest state.
        raise ActionError(f"job {job.pk}: another job for this customer and provider is already waiting; "
                          "it will converge them, so this one need not run") from None
    with transaction.atomic():
        if not updated:
            raise ActionError(f"job {job.pk} changed while you looked at it; reload and try again")
        job.refresh_from_db()
        record(actor, "job_retried", f"job:{job.pk}", before=before, after=_job_state(job), reason=reason)
    return job


def retry_jobs(jobs: QuerySet[Job], actor: str, reason: str = "", limit: int = 1000) -> int:
    """Bulk retry of a filtered selection (at most ``limit`` at once)."""
    count = 0
    for job in jobs.filter(state__in=RETRYABLE).order_by("pk")[:limit]:
        try:
            retry_job(job, actor, reason)
            count += 1
        except ActionError:
            continue  # changed meanwhile (a worker took it): not ours to retry
    record(actor, "jobs_bulk_retried", "jobs", after={"count": count}, reason=reason)
    return count


def cancel_job(job: Job, actor: str, reason: str) -> Job:
    if not reason.strip():
        raise ActionError("say why the job is cancelled: whoever looks at it next will need to know")
    if job.state not in CANCELLABLE:
        raise ActionError(f"job {job.pk} is {job.state}; it cannot be cancelled")
    before = _job_state(job)
    with transaction.atomic():
        if not Job.objects.filter(pk=job.pk, state=job.state).update(
                state=JobState.CANCELLED, finished_at=timezone.now(), updated_at=timezone.now(),
                reason_code="cancelled_by_hand"):
            raise ActionError(f"job {job.pk} changed while you looked at it; reload and try again")
        job.refresh_from_db()
        record(actor, "job_cancelled", f"job:{job.pk}", before=before, after=_job_state(job), reason=reason)
    return job


def resolve_job(job: Job, actor: str, reason: str) -> Job:
    """Mark a job in review as handled by hand (the person did the work in the provider)."""
    if not reason.strip():
        raise ActionError("say how it was resolved")
    if job.state != JobState.NEEDS_REVIEW:
        raise ActionError(f"job {job.pk} is {job.state}; only jobs that need review can be resolved")
    before = _job_state(job)
    with transaction.atomic():
        Job.objects.filter(pk=job.pk, state=JobState.NEEDS_REVIEW).update(
            state=JobState.SUCCEEDED, reason_code="resolved_by_hand", updated_at=timezone.now(),
            finished_at=timezone.now())
        job.refresh_from_db()
        record(actor, "job_resolved", f"job:{job.pk}", before=before, after=_job_state(job), reason=reason)
    return job


def replay_event(event: Event, actor: str, reason: str = "") -> Job:
    if not event.payload:
        raise ActionError(f"the payload of {event.event_id} was pruned; it cannot be replayed")
    if event.type not in HANDLED_TYPES:
        raise ActionError(f"{event.type} events are not processed; nothing to replay")
    with transaction.atomic():
        n = Job.objects.filter(event=event, kind="stripe.process_event").count()
        job = enqueue("stripe.process_event", "stripe", idempotency_key=f"stripe:event:{event.event_id}:replay:{n}",
                      correlation_id=event.correlation_id, event_id=event.pk)
        if job is None:  # two replays raced for the same number
            raise ActionError("another replay of this event was just queued; reload and look at its job")
        Event.objects.filter(pk=event.pk).update(status=Event.RECEIVED)
        record(actor, "event_replayed", f"event:{event.event_id}", after={"job": job.pk}, reason=reason)
    return job


def grant_access(customer: Customer, name: str, actor: str, reason: str,
                 expires_at: datetime | None = None) -> Override:
    try:
        return overrides.create(customer, name, Override.GRANT, reason, actor, expires_at)
    except overrides.OverrideError as exc:
        raise ActionError(str(exc)) from None


def revoke_access(customer: Customer, name: str, actor: str, reason: str,
                  expires_at: datetime | None = None) -> Override:
    try:
        return overrides.create(customer, name, Override.REVOKE, reason, actor, expires_at)
    except overrides.OverrideError as exc:
        raise ActionError(str(exc)) from None


def remove_override(override: Override, actor: str, reason: str) -> None:
    try:
        overrides.remove(override, actor, reason)
    except overrides.OverrideError as exc:
        raise ActionError(str(exc)) from None
