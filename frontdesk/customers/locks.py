"""Serialising work on one person across worker processes.

Two events about a new guest customer (no Stripe customer id, so nothing unique to collide
on) must not create the person twice. On PostgreSQL a transaction-scoped advisory lock keyed
by the e-mail makes them take turns; SQLite already runs one write transaction at a time.
"""

from __future__ import annotations

import hashlib

from django.db import connection


def lock_person(email: str) -> None:
    """Hold a lock on this e-mail until the current transaction ends."""
    if connection.vendor != "postgresql":
        return
    key = int.from_bytes(hashlib.sha256(email.strip().lower().encode()).digest()[:8], "big", signed=True)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [key])
