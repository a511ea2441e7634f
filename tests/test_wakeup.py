"""Idle workers start new work at once: PostgreSQL's NOTIFY across processes, the doorbell within
one, instead of waiting for their next look at the queue (FRONTDESK_WORKER_POLL)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection, connections, transaction

from frontdesk.ledger import handlers
from frontdesk.ledger.enqueue import enqueue
from frontdesk.ledger.models import Job, JobState
from frontdesk.ledger.wakeup import CHANNEL, Doorbell, announce
from frontdesk.ledger.worker import Worker

POSTGRES = connection.vendor == "postgresql"
LONG_POLL = 60.0  # far longer than any wait below: a job done in time was woken, not polled for
finished: dict[str, float] = {}


def record(job: Job) -> None:
    if job.payload.get("sleep"):
        time.sleep(float(job.payload["sleep"]))  # type: ignore[arg-type]
    for follow_up in job.payload.get("then", []):  # type: ignore[union-attr]
        add(follow_up["name"], sleep=follow_up.get("sleep", 0))
    finished[str(job.payload["name"])] = time.monotonic()


def add(name: str, sleep: float = 0, then: list[dict[str, Any]] | None = None) -> Job | None:
    return enqueue("test.record", "test", idempotency_key=f"test:{name}:{uuid.uuid4().hex}",
                   correlation_id=uuid.uuid4().hex, payload={"name": name, "sleep": sleep, "then": then or []})


@pytest.fixture
def start_worker(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Start a worker of two threads on a 60 s poll, once they wait on an empty queue or (with
    ``first``) after they claimed that job."""
    monkeypatch.setitem(handlers.HANDLERS, "test.record", f"{__name__}.record")
    handlers.handler_for.cache_clear()
    finished.clear()
    w = Worker(concurrency=2, poll=LONG_POLL)
    w.housekeeping = lambda: None  # type: ignore[method-assign]  # not under test; keeps the run quiet
    w.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    runner = threading.Thread(target=w.run, daemon=True)

    def start() -> Worker:
        runner.start()
        if POSTGRES:
            assert _until(lambda: w.listener is not None and w.listener.listening.is_set(), 10)
        time.sleep(0.3)  # the job threads have looked at the queue
        return w

    yield start
    w.stopping.set()
    runner.join(15)
    handlers.handler_for.cache_clear()


def _until(condition: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def test_a_ring_wakes_a_waiting_thread_and_is_not_missed_between_look_and_wait() -> None:
    bell = Doorbell()
    assert bell.wait(bell.mark(), 0.05) is False
    mark = bell.mark()
    bell.ring()  # after the look, before the wait
    started = time.monotonic()
    assert bell.wait(mark, LONG_POLL) is True
    assert time.monotonic() - started < 1
    waiter = threading.Thread(target=bell.wait, args=(bell.mark(), LONG_POLL))
    waiter.start()
    time.sleep(0.1)
    bell.ring()
    waiter.join(5)
    assert not waiter.is_alive()


@pytest.mark.django_db(transaction=True)
def test_jobs_a_job_queues_start_on_idle_threads_at_once(start_worker: Any) -> None:
    # "first" queues a slow job and a quick one. Its own thread takes one of them; the other
    # thread of the process was idle on a 60 s poll and takes the other when the bell rings.
    add("first", then=[{"name": "slow", "sleep": 4}, {"name": "quick"}])
    start_worker()
    assert _until(lambda: {"slow", "quick"} <= finished.keys(), 20), finished
    assert finished["quick"] < finished["slow"]
    # "finished" is written inside the handler, a moment before the job is marked done.
    assert _until(lambda: set(Job.objects.values_list("state", flat=True)) == {JobState.SUCCEEDED}, 10)


ONLY_POSTGRES = pytest.mark.skipif(not POSTGRES, reason="PostgreSQL's LISTEN/NOTIFY; SQLite has no "
                                   "notifications between processes and polls every 0.25 s instead")


@ONLY_POSTGRES
@pytest.mark.django_db(transaction=True)
def test_a_job_added_by_another_process_starts_at_once(start_worker: Any) -> None:
    start_worker()
    started = time.monotonic()
    add("outside")  # committed by this test's connection, as the intake would
    assert _until(lambda: "outside" in finished, 10)
    assert finished["outside"] - started < 5


@ONLY_POSTGRES
@pytest.mark.django_db(transaction=True)
def test_a_notification_is_sent_only_when_the_transaction_commits() -> None:
    listener = connections.create_connection("default")
    listener.ensure_connection()
    raw = listener.connection
    raw.execute(f"LISTEN {CHANNEL}")
    try:
        with transaction.atomic():
            announce()
            assert list(raw.notifies(timeout=0.5, stop_after=1)) == []
        assert [n.channel for n in raw.notifies(timeout=5, stop_after=1)] == [CHANNEL]
        with pytest.raises(RuntimeError), transaction.atomic():
            announce()
            raise RuntimeError("rolled back")
        assert list(raw.notifies(timeout=0.5, stop_after=1)) == []
    finally:
        listener.close()
