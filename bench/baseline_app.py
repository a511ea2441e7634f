"""The intake baseline: the least a correct Stripe webhook endpoint can do, as a yardstick for
frontdesk's intake (bench/intake.py serves both with the same gunicorn setup and wrk run).

It verifies the Stripe-Signature with frontdesk's own ``signature.verify`` (plain Python, no
Django), reads the event id, INSERTs (event id, body) into one table in a transaction of its
own, and answers 200 JSON in the shape the wrk script counts. No framework, no ORM, no logging,
no throttle; one persistent database connection per thread, as frontdesk keeps them.

    gunicorn --pythonpath bench baseline_app:app ...   # env: DATABASE_URL, STRIPE_WEBHOOK_SECRET
    python bench/baseline_app.py reset                 # create the table if needed, empty it
    python bench/baseline_app.py stats                 # {"events": N, "distinct_event_ids": N}
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
import threading
from collections.abc import Callable, Iterable
from typing import Any

from frontdesk.intake.signature import SignatureError, verify  # needs no Django settings

TABLE = "bench_baseline_event"
URL = os.environ.get("DATABASE_URL", "")
SECRETS = [s.strip() for s in os.environ.get("STRIPE_WEBHOOK_SECRET", "").split(",") if s.strip()]
TOLERANCE = int(os.environ.get("FRONTDESK_WEBHOOK_TOLERANCE", "300"))
MAX_BODY = 256 * 1024  # frontdesk's WEBHOOK_MAX_BODY_BYTES
SQLITE = URL.startswith("sqlite:///")

_local = threading.local()


def connect() -> Any:
    if SQLITE:
        # frontdesk's SQLite settings: WAL, synchronous=FULL (an fsync per commit), 20 s busy wait.
        conn = sqlite3.connect(URL[len("sqlite://"):], timeout=20, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA busy_timeout=20000")
        return conn
    import psycopg

    return psycopg.connect(URL, autocommit=True)


def connection() -> Any:
    conn = getattr(_local, "conn", None)
    if conn is None:
        conn = _local.conn = connect()
    return conn


def insert(event_id: str, body: str) -> bool:
    """One autocommit INSERT: a transaction of its own (one commit, one fsync, and on PostgreSQL
    one round trip). False when the event id is already stored."""
    mark = "?" if SQLITE else "%s"
    sql = f"INSERT INTO {TABLE} (event_id, body) VALUES ({mark}, {mark}) ON CONFLICT (event_id) DO NOTHING"
    try:
        cursor = connection().execute(sql, (event_id, body))
    except Exception:
        _local.conn = None  # reconnect on the next request
        raise
    return cursor.rowcount == 1


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    if environ["REQUEST_METHOD"] != "POST":
        return answer(start_response, "200 OK", {"ok": True})  # GET /healthz, warm-up
    length = int(environ.get("CONTENT_LENGTH") or 0)
    if length > MAX_BODY:
        return answer(start_response, "413 Payload Too Large", {"error": "body_too_large"})
    body = environ["wsgi.input"].read(length)
    try:
        verify(body, environ.get("HTTP_STRIPE_SIGNATURE"), SECRETS, TOLERANCE)
        event_id = json.loads(body.decode("utf-8"))["id"]
    except SignatureError as exc:
        return answer(start_response, "400 Bad Request", {"error": exc.reason})
    except (ValueError, KeyError, TypeError):
        return answer(start_response, "400 Bad Request", {"error": "invalid_json"})
    try:
        stored = insert(str(event_id), body.decode("utf-8"))
    except Exception:
        return answer(start_response, "503 Service Unavailable", {"error": "database_unavailable"})
    return answer(start_response, "200 OK", {"status": "stored" if stored else "duplicate", "event": event_id})


def answer(start_response: Callable[..., Any], status: str, data: dict[str, Any]) -> list[bytes]:
    payload = json.dumps(data).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))])
    return [payload]


def main(command: str) -> int:
    conn = connect()
    key = "INTEGER PRIMARY KEY AUTOINCREMENT" if SQLITE else "BIGSERIAL PRIMARY KEY"
    conn.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} (id {key}, event_id TEXT NOT NULL UNIQUE, body TEXT NOT NULL)")
    if command == "reset":
        conn.execute(f"DELETE FROM {TABLE}" if SQLITE else f"TRUNCATE {TABLE}")
        if SQLITE:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        print(json.dumps({"reset": TABLE}))
    elif command == "stats":
        events, distinct = conn.execute(f"SELECT COUNT(*), COUNT(DISTINCT event_id) FROM {TABLE}").fetchone()
        print(json.dumps({"events": events, "distinct_event_ids": distinct}))
    else:
        print(f"unknown command {command!r}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
