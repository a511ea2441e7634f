"""Storing a verified event with the job it causes, in one transaction: the webhook view and
the backfill both come through here, so an event is stored (and acted on) once either way."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction

from frontdesk.intake.models import Event, IntakeLog
from frontdesk.intake.processing import HANDLED_TYPES
from frontdesk.ledger.enqueue import enqueue

STORED, IGNORED, DUPLICATE = "stored", "ignored", "duplicate"


def created_of(data: dict[str, Any]) -> datetime | None:
    value = data.get("created")
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 2**33:
        return datetime.fromtimestamp(value, tz=UTC)
    return None


def livemode_of(data: dict[str, Any]) -> bool:
    return bool(data.get("livemode", False))


def mode_mismatch(livemode: bool) -> bool:
    key = settings.STRIPE_API_KEY
    if not key:
        return False
    return livemode != key.startswith(("sk_live_", "rk_live_"))


def store(data: dict[str, Any], payload: str, received_at: datetime, correlation_id: str,
          log_entry: IntakeLog | None = None) -> str:
    """Store the event and its processing job; returns stored, ignored or duplicate."""
    if mode_mismatch(livemode_of(data)):
        status, reason = Event.IGNORED, "livemode_mismatch"
    elif data["type"] in HANDLED_TYPES:
        status, reason = Event.RECEIVED, ""
    else:
        status, reason = Event.IGNORED, "unhandled_type"
    event_id = str(data["id"])[:255]
    try:
        _insert(data, payload, received_at, correlation_id, status, reason, log_entry,
                job_key=f"stripe:event:{event_id}")
    except IntegrityError:
        if Event.objects.filter(provider="stripe", event_id=event_id).exists():
            return DUPLICATE
        # The event is new but its job's key is taken (a job that outlived its event, e.g. kept
        # by retention): store it with a job of its own all the same.
        try:
            _insert(data, payload, received_at, correlation_id, status, reason, log_entry,
                    job_key=f"stripe:event:{event_id}:{correlation_id}")
        except IntegrityError:  # a concurrent delivery stored it meanwhile
            return DUPLICATE
    return IGNORED if reason else STORED


def _insert(data: dict[str, Any], payload: str, received_at: datetime, correlation_id: str, status: str,
            reason: str, log_entry: IntakeLog | None, *, job_key: str) -> None:
    # The unique (provider, event_id) constraint is the deduplication: a duplicate raises
    # IntegrityError here and nothing of this transaction is kept. The job is created without a
    # savepoint of its own (two round trips fewer per webhook): its key clashes only in the
    # case store() handles.
    with transaction.atomic():
        event = Event.objects.create(
            provider="stripe", event_id=str(data["id"])[:255], type=str(data["type"])[:100],
            created=created_of(data), livemode=livemode_of(data), received_at=received_at,
            correlation_id=correlation_id, payload=payload, status=status, status_reason=reason)
        if status == Event.RECEIVED:
            enqueue("stripe.process_event", "stripe", idempotency_key=job_key,
                    correlation_id=correlation_id, event_id=event.pk, savepoint=False)
        if log_entry is not None:
            log_entry.status_code, log_entry.reason = 200, "ignored" if reason else "accepted"
            log_entry.save()
