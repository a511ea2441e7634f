"""Adding jobs to the ledger, always inside the caller's transaction, so the cause (an event,
an entitlement change) and its jobs commit together or not at all."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from frontdesk.ledger.models import Job, JobState
from frontdesk.ledger.wakeup import announce

SYNC_KINDS = {"circle": "circle.sync", "kit": "kit.sync", "hubspot": "hubspot.sync"}
OPTIONAL_SYNCS = {"hubspot": "HUBSPOT_ACCESS_TOKEN"}  # queued only when configured


def sync_providers() -> list[str]:
    """The providers a customer change is synced to: HubSpot only when it is configured."""
    return [p for p in SYNC_KINDS if p not in OPTIONAL_SYNCS or getattr(settings, OPTIONAL_SYNCS[p], "")]


def new_job(kind: str, provider: str, *, idempotency_key: str, correlation_id: str,
            customer_id: int | None = None, event_id: int | None = None,
            concurrency_key: str | None = None, run_at: datetime | None = None,
            priority: int = 0, payload: dict[str, object] | None = None) -> Job:
    """An unsaved job, due at ``run_at`` (default now), retried until the provider's
    ``retry_max_age`` has passed."""
    now = timezone.now()
    max_age = float(settings.PROVIDERS.get(provider, {}).get("retry_max_age", 3 * 24 * 3600))  # type: ignore[arg-type]
    return Job(kind=kind, provider=provider, idempotency_key=idempotency_key,
               correlation_id=correlation_id, customer_id=customer_id, event_id=event_id,
               concurrency_key=concurrency_key, run_at=run_at or now, priority=priority,
               payload=payload or {}, deadline=now + timedelta(seconds=max_age))


def enqueue(kind: str, provider: str, *, idempotency_key: str, correlation_id: str,
            customer_id: int | None = None, event_id: int | None = None,
            concurrency_key: str | None = None, run_at: datetime | None = None,
            priority: int = 0, payload: dict[str, object] | None = None) -> Job | None:
    """Create a job unless one with this idempotency key (or a waiting one with this
    concurrency key) exists. Returns the new job, or None when nothing was added."""
    job = new_job(kind, provider, idempotency_key=idempotency_key, correlation_id=correlation_id,
                  customer_id=customer_id, event_id=event_id, concurrency_key=concurrency_key,
                  run_at=run_at, priority=priority, payload=payload)
    try:
        with transaction.atomic():  # a savepoint: a lost race must not spoil the caller's transaction
            job.save(force_insert=True)
    except IntegrityError:
        return None
    if job.run_at <= timezone.now():
        announce()  # a later job is found by the poll when its time comes
    return job


def sync_key(provider: str, customer_id: int) -> str:
    return f"{provider}:customer:{customer_id}"


def request_sync(provider: str, customer_id: int, *, correlation_id: str, cause: str,
                 event_id: int | None = None) -> Job | None:
    """Ask for one customer's state in ``provider`` to be converged.

    A sync job reads the desired state when it runs, so a waiting one already covers this
    change. A running one may have read the state before this transaction commits: flag it,
    and its worker queues a follow-up when it finishes. The UPDATE takes the job's row lock,
    so it waits for a concurrent claim or completion and then sees the job's real state.
    """
    key = sync_key(provider, customer_id)
    flagged = Job.objects.filter(
        concurrency_key=key, state__in=(JobState.QUEUED, JobState.RETRYING, JobState.RUNNING)
    ).update(rerun_requested=True)
    if flagged:
        return None
    # Waiting work is deduplicated by the concurrency key above; the idempotency key must be
    # new each time, or a cause that recurs ("expiry", a replayed event) would queue nothing.
    return enqueue(SYNC_KINDS[provider], provider, idempotency_key=f"{key}:{cause}:{uuid.uuid4().hex[:12]}",
                   correlation_id=correlation_id, customer_id=customer_id, event_id=event_id,
                   concurrency_key=key)


def request_syncs(customer_id: int, *, correlation_id: str, cause: str) -> None:
    """Ask every configured provider to converge this customer."""
    for provider in sync_providers():
        request_sync(provider, customer_id, correlation_id=correlation_id, cause=cause)
