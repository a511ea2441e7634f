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
    event_id) constraint is the deduplication: a duplicate raises IntegrityError.

    The statements are built before the transaction starts (what ``Model.save()`` would do,
    from the models), so the transaction is only the database's own work: on PostgreSQL one
    statement, on SQLite three executed back to back while its one write lock is held."""
    if connection.vendor == "postgresql":
        _insert_in_one_statement(event, job, log_entry)
    else:
        _insert_back_to_back(event, job, log_entry)


def _insert_back_to_back(event: Event, job: Job | None, log_entry: IntakeLog | None) -> None:
    """SQLite: BEGIN IMMEDIATE takes the write lock that every other writer queues for, so
    nothing but the inserts may happen while it is held (ORM work in between halved the
    intake's throughput; docs/performance.md). The job finds its event by last_insert_rowid()."""
    statements = [_insert_sql(event)]
    if job is not None:
        statements.append(_insert_sql(job, event_column="event_id", event_sql="last_insert_rowid()"))
    if log_entry is not None:
        statements.append(_insert_sql(log_entry))
    with transaction.atomic(), connection.cursor() as cursor:
        for number, (sql, params) in enumerate(statements):
            cursor.execute(sql, params)
            if number == 0:
                event.pk = cursor.lastrowid


def _insert_in_one_statement(event: Event, job: Job | None, log_entry: IntakeLog | None) -> None:
    """PostgreSQL: the three inserts as one statement (data-modifying WITH clauses), so a
    webhook costs one round trip instead of five (BEGIN, three INSERTs, COMMIT): that round
    trip count was most of the intake's time and much of its CPU (docs/performance.md). One
    statement is atomic on its own; inside a caller's transaction a savepoint keeps a
    duplicate from spoiling it."""
    parts, params = [], []
    for name, obj in (("e", event), ("j", job), ("l", log_entry)):
        if obj is None:
            continue
        # The job points at the event inserted above.
        sql, values = (_insert_sql(obj, event_column="event_id", event_sql="(SELECT id FROM e)") if name == "j"
                       else _insert_sql(obj))
        parts.append(f"{name} AS ({sql} RETURNING id)")
        params.extend(values)
    # Unreferenced data-modifying WITH clauses still run, exactly once (PostgreSQL docs 7.8.4).
    # No NOTIFY here: PostgreSQL serialises the commits of all notifying transactions (a global
    # lock held through the WAL flush), which capped the intake at a third of its rate; idle
    # workers find new events by their staggered polls instead (frontdesk/ledger/wakeup.py).
    sql = f"WITH {', '.join(parts)} SELECT id FROM e"  # nosec B608  # table and column names come from the models; values are %s parameters
    with transaction.atomic() if connection.in_atomic_block else nullcontext():
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            event.pk = cursor.fetchone()[0]


def _insert_sql(obj: Model, event_column: str | None = None, event_sql: str = "") -> tuple[str, list[Any]]:
    """``INSERT`` of what ``Model.save()`` would insert: every concrete field but the primary
    key, after ``pre_save`` (auto_now) and the field's conversion for the database; with
    ``event_column`` set to the SQL expression ``event_sql`` instead of a value."""
    quote = connection.ops.quote_name
    fields = [f for f in obj._meta.concrete_fields if not f.primary_key and f.column != event_column]
    columns = [quote(f.column) for f in fields]
    values = [f.get_db_prep_save(f.pre_save(obj, add=True), connection=connection) for f in fields]
    placeholders = ["%s"] * len(values)
    if event_column is not None:
        columns.append(quote(event_column))
        placeholders.append(event_sql)
    sql = (f"INSERT INTO {quote(obj._meta.db_table)} ({', '.join(columns)}) "  # nosec B608  # names from the models; values are %s parameters
           f"VALUES ({', '.join(placeholders)})")
    return sql, values
