"""Storing a verified event with the job it causes, in one transaction: the webhook view and
the backfill both come through here, so an event is stored (and acted on) once either way."""

from __future__ import annotations

from contextlib import nullcontext
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Model

from frontdesk.intake.models import Event, IntakeLog
from frontdesk.intake.processing import HANDLED_TYPES
from frontdesk.ledger.enqueue import new_job
from frontdesk.ledger.models import Job
from frontdesk.ledger.wakeup import NOTIFY_SQL

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
    event = Event(provider="stripe", event_id=event_id, type=str(data["type"])[:100], created=created_of(data),
                  livemode=livemode_of(data), received_at=received_at, correlation_id=correlation_id,
                  payload=payload, status=status, status_reason=reason)
    if log_entry is not None:
        log_entry.status_code, log_entry.reason = 200, "ignored" if reason else "accepted"
    try:
        _insert(event, _job(event, f"stripe:event:{event_id}"), log_entry)
    except IntegrityError:
        if Event.objects.filter(provider="stripe", event_id=event_id).exists():
            return DUPLICATE
        # The event is new but its job's key is taken (a job that outlived its event, e.g. kept
        # by retention): store it with a job of its own all the same.
        try:
            _insert(event, _job(event, f"stripe:event:{event_id}:{correlation_id}"), log_entry)
        except IntegrityError:  # a concurrent delivery stored it meanwhile
            return DUPLICATE
    return IGNORED if reason else STORED


def _job(event: Event, key: str) -> Job | None:
    if event.status != Event.RECEIVED:
        return None
    return new_job("stripe.process_event", "stripe", idempotency_key=key, correlation_id=event.correlation_id)


def _insert(event: Event, job: Job | None, log_entry: IntakeLog | None) -> None:
    """Insert the event, its job and the log row, all or nothing. The unique (provider,
    event_id) constraint is the deduplication: a duplicate raises IntegrityError."""
    if connection.vendor == "postgresql":
        _insert_in_one_statement(event, job, log_entry)
        return
    with transaction.atomic():
        event.pk = None
        event.save(force_insert=True)
        if job is not None:
            job.pk, job.event_id = None, event.pk
            job.save(force_insert=True)
        if log_entry is not None:
            log_entry.pk = None
            log_entry.save(force_insert=True)


def _insert_in_one_statement(event: Event, job: Job | None, log_entry: IntakeLog | None) -> None:
    """PostgreSQL: the three inserts as one statement (data-modifying WITH clauses), so a
    webhook costs one round trip instead of five (BEGIN, three INSERTs, COMMIT): that round
    trip count was most of the intake's time and much of its CPU (docs/performance.md). One
    statement is atomic on its own; inside a caller's transaction a savepoint keeps a
    duplicate from spoiling it."""
    parts, params = [], []
    for name, obj, extra in (("e", event, None), ("j", job, "event_id"), ("l", log_entry, None)):
        if obj is None:
            continue
        columns, values = _columns_and_values(obj, skip=extra)
        if extra is None:
            parts.append(f"{name} AS (INSERT INTO {obj._meta.db_table} ({', '.join(columns)}) "
                         f"VALUES ({', '.join(['%s'] * len(values))}) RETURNING id)")
        else:  # the job points at the event inserted above
            parts.append(f"{name} AS (INSERT INTO {obj._meta.db_table} ({', '.join(columns)}, {extra}) "
                         f"SELECT {', '.join(['%s'] * len(values))}, id FROM e RETURNING id)")
        params.extend(values)
    if job is not None:  # wake the workers when this commits (frontdesk/ledger/wakeup.py)
        parts.append(f"n AS ({NOTIFY_SQL})")
    # Unreferenced data-modifying WITH clauses still run, exactly once (PostgreSQL docs 7.8.4);
    # the plain SELECT of the notification runs only when referenced.
    sql = f"WITH {', '.join(parts)} SELECT id FROM e{', n' if job is not None else ''}"  # nosec B608  # table and column names come from the models; values are %s parameters
    with transaction.atomic() if connection.in_atomic_block else nullcontext():
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            event.pk = cursor.fetchone()[0]


def _columns_and_values(obj: Model, skip: str | None) -> tuple[list[str], list[Any]]:
    """What ``Model.save()`` would insert: every concrete field but the primary key, after
    ``pre_save`` (auto_now) and the field's conversion for the database."""
    quote = connection.ops.quote_name
    fields = [f for f in obj._meta.concrete_fields if not f.primary_key and f.column != skip]
    return ([quote(f.column) for f in fields],
            [f.get_db_prep_save(f.pre_save(obj, add=True), connection=connection) for f in fields])
