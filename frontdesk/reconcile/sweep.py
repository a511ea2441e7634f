"""The periodic sweep: one worker per RECONCILE_INTERVAL runs a full reconciliation."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

from django.db import connection
from django.utils import timezone

from frontdesk.alerts.evaluate import take_slot
from frontdesk.logs import get_logger
from frontdesk.reconcile import config
from frontdesk.reconcile.engine import reconcile
from frontdesk.reconcile.models import ReconcileRun

log = get_logger(__name__)
SLOT = "reconcile"


def run_scheduled(now: datetime | None = None) -> ReconcileRun | None:
    """Run a full reconciliation if this caller wins this interval's slot (one caller per
    interval across all workers); None otherwise or when the schedule is off.

    A run can take minutes to hours (it paces itself under the providers' rate limits), so
    call it from its own thread, not from a loop that must keep renewing leases: see
    :func:`start_scheduled`."""
    seconds = config.interval()
    if seconds <= 0 or not take_slot(SLOT, seconds, now):
        return None
    return reconcile(trigger="schedule")


def start_scheduled(now: datetime | None = None, stop: threading.Event | None = None) -> threading.Thread | None:
    """Take the slot here and run the sweep in a daemon thread; returns the thread, or None
    when another worker has this interval. Cheap enough to call on every housekeeping tick.
    Pass the worker's stopping event so a shutdown ends the run cleanly (``interrupted``)."""
    seconds = config.interval()
    if seconds <= 0 or not take_slot(SLOT, seconds, now):
        return None

    def work() -> None:
        try:
            reconcile(trigger="schedule", stop=stop)
        except Exception:  # already logged per provider; never let it escape the thread
            log.exception("reconcile_sweep_failed")
        finally:
            connection.close()  # this thread's own connection

    thread = threading.Thread(target=work, name="reconcile", daemon=True)
    thread.start()
    return thread


def prune_runs(days: int = 90, now: datetime | None = None) -> int:
    """Delete finished runs (and their drift rows) older than ``days``; returns how many runs."""
    cutoff = (now or timezone.now()) - timedelta(days=days)
    old = ReconcileRun.objects.filter(started_at__lt=cutoff).exclude(status=ReconcileRun.RUNNING)
    deleted = 0
    while ids := list(old.values_list("pk", flat=True)[:500]):  # batches, like the other pruning
        ReconcileRun.objects.filter(pk__in=ids).delete()
        deleted += len(ids)
    return deleted
