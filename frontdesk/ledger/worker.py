"""The worker process: N threads that claim and run jobs, and one that keeps leases alive.

SIGTERM (or SIGINT) stops claiming; jobs in flight get SHUTDOWN_GRACE seconds to finish, and
any still running are released back to the queue so another worker takes them at once instead
of after their lease runs out.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import threading
import time
import uuid

from django.conf import settings
from django.db import close_old_connections, connection
from django.utils import timezone

from frontdesk.alerts.evaluate import evaluate as evaluate_alerts
from frontdesk.alerts.evaluate import take_slot
from frontdesk.customers.recompute import due_for_expiry, recompute
from frontdesk.ledger import claim, wakeup
from frontdesk.ledger.models import Attempt, Job, JobState, WorkerHeartbeat
from frontdesk.ledger.runner import execute
from frontdesk.logs import get_logger
from frontdesk.ops.fingerprint import record_start
from frontdesk.ops.retention import prune
from frontdesk.reconcile.sweep import start_scheduled

log = get_logger(__name__)
SHUTDOWN_GRACE = 20.0


class Worker:
    def __init__(self, concurrency: int = 4, worker_id: str | None = None, poll: float | None = None) -> None:
        self.concurrency = concurrency
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.poll = settings.WORKER_POLL_SECONDS if poll is None else poll
        self.stopping = threading.Event()
        self.in_flight: dict[int, int] = {}  # thread ident → job id
        self.lock = threading.Lock()
        self.done = 0
        self.bell = wakeup.Doorbell()
        self.listener: wakeup.Listener | None = None

    # --- one unit of work -------------------------------------------------------------
    def run_one(self) -> bool:
        """Claim and run one due job; False when there was none."""
        job = claim.claim(self.worker_id)
        if job is None:
            return False
        with self.lock:
            self.in_flight[threading.get_ident()] = job.pk
        try:
            execute(job, self.worker_id)
        finally:
            with self.lock:
                self.in_flight.pop(threading.get_ident(), None)
                self.done += 1
            # The job may have queued others (a processed event, its syncs): idle threads of this
            # process look now. Across processes PostgreSQL's NOTIFY does it (wakeup.py).
            self.bell.ring()
        return True

    def housekeeping(self) -> None:
        with self.lock:
            ids = list(self.in_flight.values())
        claim.renew_leases(self.worker_id, ids)
        now = timezone.now()
        WorkerHeartbeat.objects.update_or_create(
            worker_id=self.worker_id,
            defaults={"hostname": socket.gethostname(), "pid": os.getpid(), "seen_at": now, "jobs_done": self.done},
            create_defaults={"hostname": socket.gethostname(), "pid": os.getpid(), "seen_at": now,
                             "started_at": now, "jobs_done": self.done},
        )
        claim.reap_expired(now)
        # Periodic duties run in whichever worker takes their slot first.
        if take_slot("alerts", settings.ALERTS["interval"], now):
            evaluate_alerts(now)
        if take_slot("retention", 3600, now):
            prune()
        if take_slot("expiry", 30, now):  # grace periods, period ends, durations, overrides
            for customer_id in due_for_expiry(now):
                recompute(customer_id, "expiry", now=now)
        # Reconciliation can take hours: one worker per RECONCILE_INTERVAL runs it in its own thread.
        start_scheduled(now, stop=self.stopping)

    # --- loops ---------------------------------------------------------------------------
    def _work_loop(self) -> None:
        while not self.stopping.is_set():
            rings = self.bell.mark()
            try:
                found = self.run_one()
            except Exception:
                log.exception("worker_loop_error")
                found = False
                self.stopping.wait(self.poll)  # a broken database: no hurry, whatever rings
            finally:
                close_old_connections()
            if not found:
                # Jittered, so that idle threads look at staggered times: a new event (the intake
                # sends no notice, see wakeup.py) waits about poll ÷ (idle threads + 1).
                self.bell.wait(rings, self.poll * (0.5 + random.random()))  # nosec B311  # timing, not security
        connection.close()

    def _housekeeping_loop(self) -> None:
        interval = max(0.2, min(5.0, settings.LEASE_SECONDS / 4, settings.ALERTS["interval"] / 3))
        while not self.stopping.is_set():
            try:
                self.housekeeping()
            except Exception:
                log.exception("housekeeping_error")
            finally:
                close_old_connections()
            self.stopping.wait(interval)
        connection.close()

    def install_signal_handlers(self) -> None:
        def stop(signum: int, _frame: object) -> None:
            log.info("worker_stopping", signal=signal.Signals(signum).name)
            self.stopping.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)

    def run(self) -> None:
        log.info("worker_started", worker_id=self.worker_id, concurrency=self.concurrency)
        changed = record_start("worker")
        if changed:
            log.warning("configuration_changed", changes=sorted(changed))
        self.housekeeping()
        threads = [threading.Thread(target=self._work_loop, name=f"job-{i}", daemon=True)
                   for i in range(self.concurrency)]
        keeper = threading.Thread(target=self._housekeeping_loop, name="housekeeping", daemon=True)
        if connection.vendor == "postgresql":
            self.listener = wakeup.Listener(self.bell, self.stopping)
            threads.append(self.listener)
        for t in [*threads, keeper]:
            t.start()
        while not self.stopping.is_set():
            self.stopping.wait(0.5)
        self.bell.ring()  # idle threads see stopping now, not after their poll
        deadline = time.monotonic() + SHUTDOWN_GRACE
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))
        self.release_in_flight()
        WorkerHeartbeat.objects.filter(worker_id=self.worker_id).delete()
        connection.close()
        log.info("worker_stopped", worker_id=self.worker_id, jobs_done=self.done)

    def release_in_flight(self) -> None:
        """Hand back jobs still running after the grace period."""
        with self.lock:
            ids = list(self.in_flight.values())
        if not ids:
            return
        now = timezone.now()
        released = Job.objects.filter(pk__in=ids, lease_owner=self.worker_id, state=JobState.RUNNING).update(
            state=JobState.RETRYING, lease_owner="", lease_expires_at=None, run_at=now,
            reason_code="worker_shutdown", updated_at=now)
        Attempt.objects.filter(job_id__in=ids, outcome="").update(outcome="lost", reason_code="worker_shutdown")
        log.warning("jobs_released_on_shutdown", count=released)
