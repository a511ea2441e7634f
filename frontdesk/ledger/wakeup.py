"""Waking idle worker threads when work arrives, instead of letting it wait for their next look.

On PostgreSQL a worker's transaction that adds a job (an event's processing queueing its syncs,
a rerun) also sends ``NOTIFY frontdesk_jobs``, which PostgreSQL delivers when (and only if) it
commits, to every listening worker on any host. Each worker process keeps one listening
connection; a notification rings its :class:`Doorbell`, and the idle threads claim at once.
Within one process a finished job rings the bell too, on both databases.

The intake sends no notice: PostgreSQL serialises the commits of notifying transactions (a
cluster-wide lock held through the WAL flush), which cost the intake a fifth of its rate at a
few hundred webhooks per second. New events are found by the idle threads' polls
(``FRONTDESK_WORKER_POLL``), jittered so that N idle threads look about every poll ÷ (N + 1)
seconds between them. The poll is also the fallback for a retry whose time has come, a lost
listening connection, and SQLite, which has no notifications between processes.
"""

from __future__ import annotations

import threading

from django.db import connection, connections

from frontdesk.logs import get_logger

log = get_logger(__name__)

CHANNEL = "frontdesk_jobs"
NOTIFY_SQL = f"SELECT pg_notify('{CHANNEL}', '')"


def announce() -> None:
    """Tell listening workers, once this transaction commits, that a job was added."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(NOTIFY_SQL)


class Doorbell:
    """Idle threads wait on it; a ring wakes them all. A ring between a thread's look at the
    queue and its wait is not missed: the thread waits only while no ring came since its look."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._rings = 0

    def mark(self) -> int:
        return self._rings

    def ring(self) -> None:
        with self._cond:
            self._rings += 1
            self._cond.notify_all()

    def wait(self, since: int, timeout: float) -> bool:
        """Wait until a ring after ``since`` or ``timeout``; True when rung."""
        with self._cond:
            return self._cond.wait_for(lambda: self._rings != since, timeout)


class Listener(threading.Thread):
    """PostgreSQL only: LISTEN on a connection of its own and ring ``bell`` per notification.
    A lost connection is replaced after a pause; meanwhile the poll keeps work moving."""

    def __init__(self, bell: Doorbell, stopping: threading.Event) -> None:
        super().__init__(name="job-listener", daemon=True)
        self.bell, self.stopping = bell, stopping
        self.listening = threading.Event()  # set while LISTEN is in effect (tests wait on it)

    def run(self) -> None:
        pause = 1.0
        while not self.stopping.is_set():
            db = connections.create_connection("default")
            try:
                db.ensure_connection()
                raw = db.connection
                raw.execute(f"LISTEN {CHANNEL}")
                self.listening.set()
                pause = 1.0
                while not self.stopping.is_set():
                    # Wakes at least every second to notice stopping.
                    for _ in raw.notifies(timeout=1.0, stop_after=1):
                        self.bell.ring()
            except Exception as exc:  # psycopg's own errors (the raw connection), Django's, OSError
                log.warning("job_listener_lost", error=type(exc).__name__)
                self.stopping.wait(pause)
                pause = min(pause * 2, 30.0)
            finally:
                self.listening.clear()
                try:
                    db.close()
                except Exception:  # nosec B110  # the connection is already gone
                    pass
