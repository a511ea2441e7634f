"""Claiming due jobs: one atomic statement on both databases.

PostgreSQL: the inner SELECT takes row locks with SKIP LOCKED, so concurrent workers on any
number of hosts never wait for or take the same job. SQLite: the single UPDATE … RETURNING runs
under the database's one writer lock, which gives the same guarantee.
"""

from __future__ import annotations

from contextlib import nullcontext
from collections.abc import Sequence
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from frontdesk.ledger.models import Attempt, Job, JobState, ProviderState
from frontdesk.logs import get_logger

log = get_logger(__name__)


def _db(value: datetime) -> object:
    return connection.ops.adapt_datetimefield_value(value)


def claim(worker_id: str, blocked: Sequence[str] = (), now: datetime | None = None) -> Job | None:
    """Lease the most urgent due job whose provider lane is open, counting its attempt.

    The statement also skips lanes that are blocked (circuit open, paused, rate limited) and
    says whether the job's lane is clean (open, no recent failures): the runner then needs
    neither to read nor to write the lane. ``blocked`` excludes more providers by name."""
    now = now or timezone.now()
    lease_until = now + timedelta(seconds=settings.LEASE_SECONDS)
    table, lanes = Job._meta.db_table, ProviderState._meta.db_table
    exclude = ""
    # The claimed job reads the newest state, so earlier rerun requests are already covered.
    params: list[object] = [worker_id, _db(lease_until), _db(now), False, _db(now), _db(now)]
    if blocked:
        exclude = f"AND j.provider NOT IN ({', '.join(['%s'] * len(blocked))})"
        params.extend(blocked)
    lock = "FOR UPDATE SKIP LOCKED" if connection.vendor == "postgresql" else ""
    sql = f"""
        UPDATE {table} SET state = 'running', lease_owner = %s, lease_expires_at = %s, updated_at = %s,
            rerun_requested = %s, attempts = attempts + 1
        WHERE id IN (
            SELECT j.id FROM {table} j
            WHERE j.state IN ('queued', 'retrying') AND j.run_at <= %s
              AND NOT EXISTS (SELECT 1 FROM {lanes} b WHERE b.provider = j.provider
                              AND b.status <> '{ProviderState.OK}' AND b.blocked_until > %s) {exclude}
              AND (j.concurrency_key IS NULL OR NOT EXISTS (
                    SELECT 1 FROM {table} r
                    WHERE r.concurrency_key = j.concurrency_key AND r.state = 'running'))
            ORDER BY j.priority DESC, j.run_at, j.id
            LIMIT 1
            {lock}
        )
        RETURNING id, COALESCE((SELECT s.status = '{ProviderState.OK}' AND s.consecutive_failures = 0
                                FROM {lanes} s WHERE s.provider = {table}.provider), TRUE)
    """  # nosec B608  # only table names and fixed SQL fragments are interpolated; values are %s parameters
    # One statement is atomic on its own: on PostgreSQL it runs without BEGIN/COMMIT (two round
    # trips fewer per job); SQLite keeps BEGIN IMMEDIATE, which takes its write lock up front.
    with transaction.atomic() if connection.vendor == "sqlite" else nullcontext(), connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        return None
    job = Job.objects.select_related("customer", "event").get(pk=row[0])
    job.lane_clean = bool(row[1])
    return job


def renew_leases(worker_id: str, job_ids: list[int]) -> int:
    if not job_ids:
        return 0
    until = timezone.now() + timedelta(seconds=settings.LEASE_SECONDS)
    return Job.objects.filter(pk__in=job_ids, lease_owner=worker_id, state=JobState.RUNNING).update(
        lease_expires_at=until)


def reap_expired(now: datetime | None = None) -> int:
    """Return jobs whose worker died (lease expired) to the queue. Their unfinished attempt is
    marked lost; the attempt already counted, so a job that keeps killing workers still ends in
    review at its deadline. Safe to run from every worker at once."""
    now = now or timezone.now()
    reaped = 0
    for job_id, owner in Job.objects.filter(state=JobState.RUNNING, lease_expires_at__lt=now).values_list("pk", "lease_owner")[:100]:
        with transaction.atomic():
            won = Job.objects.filter(pk=job_id, state=JobState.RUNNING, lease_owner=owner,
                                     lease_expires_at__lt=now).update(
                state=JobState.RETRYING, lease_owner="", lease_expires_at=None, run_at=now,
                reason_code="lease_expired", updated_at=now)
            if won:
                Attempt.objects.filter(job_id=job_id, outcome="").update(
                    outcome="lost", reason_code="lease_expired", message=f"worker {owner} stopped renewing its lease")
                reaped += 1
    if reaped:
        log.warning("jobs_reaped", count=reaped)
    return reaped
