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


def mode_mismatch(livemode: bool) -> bool:
    key = settings.STRIPE_API_KEY
    if not key:
        return False
    return livemode != key.startswith(("sk_live_", "rk_live_"))


def store(data: dict[str, Any], payload: str, received_at: datetime, correlation_id: str,
          log_entry: IntakeLog | None = None) -> str:
    """Store the event and its processing job; returns stored, ignored or duplicate."""
    livemode = bool(data.get("livemode", False))
    if mode_mismatch(livemode):
        status, reason = Event.IGNORED, "livemode_mismatch"
    elif data["type"] in HANDLED_TYPES:
        status, reason = Event.RECEIVED, ""
    else:
        status, reason = Event.IGNORED, "unhandled_type"
    try:
        with transaction.atomic():
            event = Event.objects.create(
                provider="stripe", event_id=str(data["id"])[:255], type=str(data["type"])[:100],
                created=created_of(data), livemode=livemode, received_at=received_at,
                correlation_id=correlation_id, payload=payload, status=status, status_reason=reason)
            if status == Event.RECEIVED:
                enqueue("stripe.process_event", "stripe", idempotency_key=f"stripe:event:{event.event_id}",
                        correlation_id=correlation_id, event_id=event.pk)
            if log_entry is not None:
                log_entry.status_code, log_entry.reason = 200, "ignored" if reason else "accepted"
                log_entry.save()
    except IntegrityError:
        return DUPLICATE
    return IGNORED if reason else STORED
