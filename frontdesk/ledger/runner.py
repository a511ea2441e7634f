"""Running one claimed job and recording what happened.

Every try is an Attempt row written before the handler starts and completed after it. Only the
worker that holds the lease may complete a job: if its lease was taken over (it stalled past
expiry), its result is dropped and the new owner's stands.
"""

from __future__ import annotations

import time
import traceback
from datetime import timedelta

from django.conf import settings
from django.db import InterfaceError, OperationalError, transaction
from django.db.models import F
from django.utils import timezone

from frontdesk.connectors.http import AUTH, PERMANENT, RATE_LIMITED, ProviderError, last_status
from frontdesk.ledger import backoff, providers
from frontdesk.ledger.enqueue import enqueue
from frontdesk.ledger.handlers import handler_for
from frontdesk.ledger.models import Attempt, Job, JobState, ProviderState
from frontdesk.ledger.ratelimit import Deferred
from frontdesk.logs import bound, get_logger
from frontdesk.ops.metrics import ATTEMPT_LATENCY, ATTEMPTS, RETRIES
from frontdesk.redact import redact

log = get_logger(__name__)
CLEAN_LANE = ProviderState(status=ProviderState.OK, consecutive_failures=0)  # never saved


def execute(job: Job, worker_id: str) -> str:
    """Run ``job`` (already claimed by ``worker_id``); return its new state."""
    with bound(correlation_id=job.correlation_id, job_id=job.pk, job_kind=job.kind):
        # A lane the claim saw clean needs no read now, nor a write after a success.
        lane = CLEAN_LANE if job.lane_clean else providers.take_probe(job.provider)
        if lane is None:
            until = providers.state(job.provider).blocked_until or timezone.now()
            return _release(job, worker_id, until, reason=f"{job.provider}_blocked")
        # The claim counted this attempt (job.attempts is its number), so that a worker killed
        # from here on has spent it.
        attempt = Attempt.objects.create(job=job, number=job.attempts, worker=worker_id, started_at=timezone.now())
        started = time.monotonic()
        last_status.set(None)
        try:
            handler_for(job.kind)(job)
        except Deferred as exc:
            # No request was sent: the attempt does not count.
            attempt.delete()
            return _release(job, worker_id, timezone.now() + timedelta(seconds=exc.wait), reason="rate_limit_wait")
        except ProviderError as exc:
            return _failed(job, worker_id, attempt, started, exc)
        except (OperationalError, InterfaceError) as exc:
            # A deadlock, a serialization failure or a dropped connection: the job's transaction
            # rolled back, so it runs again; it is not the provider's fault (no circuit count).
            log.warning("job_database_error", error=f"{type(exc).__name__}: {exc}"[:300])
            _finish_attempt(attempt, started, "transient", "database_error", redact(str(exc), 500))
            delay = backoff.delay(attempt.number, settings.RETRY_BASE_SECONDS, settings.RETRY_CAP_SECONDS)
            run_at = timezone.now() + timedelta(seconds=delay)
            if run_at > job.deadline:
                return _complete(job, worker_id, JobState.NEEDS_REVIEW, reason="retries_exhausted",
                                 error=f"gave up after {attempt.number} attempts; last: database_error: {exc}")
            return _complete(job, worker_id, JobState.RETRYING, reason="database_error", error=str(exc), run_at=run_at)
        except Exception as exc:  # a bug or bad data: a person has to look
            log.exception("job_crashed")
            error = ProviderError(job.provider, PERMANENT, "internal_error",
                                  f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=3)}")
            return _failed(job, worker_id, attempt, started, error)
        _finish_attempt(attempt, started, "succeeded")
        providers.record_success(job.provider, seen=lane)
        return _complete(job, worker_id, JobState.SUCCEEDED)


def _finish_attempt(attempt: Attempt, started: float, outcome: str, reason: str = "", message: str = "") -> None:
    attempt.duration_ms = (time.monotonic() - started) * 1000
    attempt.outcome = outcome
    attempt.http_status = last_status.get()
    attempt.reason_code = reason
    attempt.message = message
    attempt.save(update_fields=["duration_ms", "outcome", "http_status", "reason_code", "message"])
    ATTEMPTS.labels(attempt.job.provider, attempt.job.kind, outcome, reason).inc()
    ATTEMPT_LATENCY.labels(attempt.job.provider).observe(attempt.duration_ms / 1000)


def _failed(job: Job, worker_id: str, attempt: Attempt, started: float, exc: ProviderError) -> str:
    now = timezone.now()
    log.warning("job_attempt_failed", kind_of_failure=exc.kind, reason=exc.reason, status=exc.status)
    if exc.kind == AUTH:
        # A bad token fails every job alike: pause the lane instead of filling the review queue.
        _finish_attempt(attempt, started, "paused", exc.reason, exc.message)
        until = providers.block(job.provider, "paused", exc.reason, exc.message, settings.AUTH_PAUSE_SECONDS)
        return _release(job, worker_id, until, reason=exc.reason, error=exc.message)
    if exc.kind == PERMANENT:
        _finish_attempt(attempt, started, "permanent", exc.reason, exc.message)
        return _complete(job, worker_id, JobState.NEEDS_REVIEW, reason=exc.reason, error=exc.message)
    _finish_attempt(attempt, started, "transient", exc.reason, exc.message)
    if exc.kind == RATE_LIMITED:
        # Stop the whole lane, not only this job: every request with this key would get a 429.
        wait = exc.retry_after if exc.retry_after is not None else float(
            settings.PROVIDERS[job.provider]["rate_limit_wait"])  # type: ignore[arg-type]
        if wait:
            providers.block(job.provider, "rate_limited", exc.reason, exc.message, wait)
    else:
        providers.record_transient(job.provider, exc.reason, exc.message)
        wait = exc.retry_after or 0.0
    delay = max(wait, backoff.delay(attempt.number, settings.RETRY_BASE_SECONDS, settings.RETRY_CAP_SECONDS))
    run_at = now + timedelta(seconds=delay)
    if run_at > job.deadline:
        return _complete(job, worker_id, JobState.NEEDS_REVIEW, reason="retries_exhausted",
                         error=f"gave up after {attempt.number} attempts; last: {exc.reason}: {exc.message}")
    RETRIES.labels(job.provider, exc.reason).inc()
    return _complete(job, worker_id, JobState.RETRYING, reason=exc.reason, error=exc.message, run_at=run_at)


def _release(job: Job, worker_id: str, run_at: object, reason: str, error: str = "") -> str:
    """Put a job back without a verdict (provider blocked or paused, no rate slot): the
    attempt the claim counted does not count."""
    state = JobState.RETRYING if job.attempts > 1 else JobState.QUEUED
    Job.objects.filter(pk=job.pk, lease_owner=worker_id, state=JobState.RUNNING).update(
        state=state, run_at=run_at, lease_owner="", lease_expires_at=None, reason_code=reason,
        attempts=F("attempts") - 1, last_error=error or F("last_error"), updated_at=timezone.now())
    return state


def _complete(job: Job, worker_id: str, state: str, *, reason: str = "", error: str = "",
              run_at: object = None) -> str:
    now = timezone.now()
    fields: dict[str, object] = {
        "state": state, "lease_owner": "", "lease_expires_at": None, "reason_code": reason,
        "last_error": redact(error, 2000), "updated_at": now,
    }
    if run_at is not None:
        fields["run_at"] = run_at
    if state in (JobState.SUCCEEDED, JobState.NEEDS_REVIEW):
        fields["finished_at"] = now
    with transaction.atomic():
        mine = Job.objects.select_for_update().filter(pk=job.pk, lease_owner=worker_id, state=JobState.RUNNING)
        row = mine.values("rerun_requested").first()
        if row is None:
            log.warning("job_lease_lost", outcome=state)
            return "lost"
        mine.update(**fields)
        if state == JobState.NEEDS_REVIEW:
            from frontdesk.support.notices import review_needed

            review_needed(job.pk, job.kind, reason, job.customer, job.correlation_id)
        if row["rerun_requested"] and state != JobState.RETRYING and job.concurrency_key:
            # State changed while this job ran: one more pass converges it.
            enqueue(job.kind, job.provider, idempotency_key=f"{job.concurrency_key}:rerun:{job.pk}",
                    correlation_id=job.correlation_id, customer_id=job.customer_id, event_id=job.event_id,
                    concurrency_key=job.concurrency_key)
    log.info("job_finished", state=state, reason=reason or None)
    return state
