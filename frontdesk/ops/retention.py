"""Pruning old data in small batches, so no long transaction blocks the workers.

Defaults (FRONTDESK_RETAIN_*_DAYS): raw payloads of processed events 30 days (the event row,
its type and outcome stay), intake log 30 days, succeeded or cancelled jobs 90 days (with their
attempts). Jobs that need review and unprocessed events are never pruned.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db.models import Model, QuerySet
from django.utils import timezone

from frontdesk.intake.models import Event, IntakeLog
from frontdesk.ledger.models import Job, JobState
from frontdesk.logs import get_logger

log = get_logger(__name__)
BATCH = 500


def _in_batches(queryset: QuerySet[Model], action: str, max_batches: int, **update: object) -> int:
    done = 0
    for _ in range(max_batches):
        ids = list(queryset.values_list("pk", flat=True)[:BATCH])
        if not ids:
            break
        batch = queryset.model.objects.filter(pk__in=ids)
        if action == "update":
            done += batch.update(**update)
        else:  # count the rows of this model, not the attempts deleted with them
            done += batch.delete()[1].get(queryset.model._meta.label, 0)
    return done


def prune(max_batches: int = 20) -> dict[str, int]:
    now = timezone.now()
    days = settings.RETENTION_DAYS
    counts = {
        "payloads": _in_batches(
            Event.objects.filter(received_at__lt=now - timedelta(days=days["payloads"]),
                                 status__in=(Event.PROCESSED, Event.IGNORED)).exclude(payload=""),
            "update", max_batches, payload=""),
        "intake_log": _in_batches(
            IntakeLog.objects.filter(received_at__lt=now - timedelta(days=days["intake_log"])),
            "delete", max_batches),
        "finished_jobs": _in_batches(
            Job.objects.filter(state__in=(JobState.SUCCEEDED, JobState.CANCELLED),
                               updated_at__lt=now - timedelta(days=days["finished_jobs"])),
            "delete", max_batches),
    }
    from frontdesk.reconcile.sweep import prune_runs

    counts["reconcile_runs"] = prune_runs(days["finished_jobs"])
    if any(counts.values()):
        log.info("pruned", **counts)
    return counts
