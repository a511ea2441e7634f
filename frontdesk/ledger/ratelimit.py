"""A provider's rate limit, shared by every worker process through the database.

Each request reserves the next free slot with one atomic UPDATE (GCRA-style spacing of
window/limit seconds), then sleeps until it. Even spacing keeps any sliding window of the
provider's length at or under its limit, so a backlog drains at the limit without 429s.
"""

from __future__ import annotations

import time

from django.conf import settings
from django.db import connection

from frontdesk.ledger.models import RateSlot

# Slots slightly wider than window/limit: clocks and network jitter must not tip a full
# window over the provider's limit.
SAFETY = 1.02
MAX_WAIT_SECONDS = 5.0


class Deferred(Exception):
    """No slot within MAX_WAIT_SECONDS: put the job back without spending an attempt."""

    def __init__(self, provider: str, wait: float) -> None:
        super().__init__(f"{provider} rate limit: next slot in {wait:.1f} s")
        self.provider = provider
        self.wait = wait


def interval(provider: str) -> float:
    count, window = settings.PROVIDERS[provider]["rate_limit"]  # type: ignore[misc]
    return window / count * SAFETY


def reserve(provider: str, now: float | None = None, max_wait: float = MAX_WAIT_SECONDS) -> float | None:
    """Reserve a slot; return its time, or None if the next slot is further than max_wait."""
    now = time.time() if now is None else now
    step = interval(provider)
    greatest = "GREATEST" if connection.vendor == "postgresql" else "MAX"
    table = RateSlot._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET next_at = {greatest}(next_at, %s) + %s "  # nosec B608  # table and function names only; values are parameters
            f"WHERE provider = %s AND next_at - %s <= %s RETURNING next_at",
            [now, step, provider, now, max_wait],
        )
        row = cursor.fetchone()
    if row is not None:
        return float(row[0]) - step
    if not RateSlot.objects.filter(provider=provider).exists():
        RateSlot.objects.get_or_create(provider=provider)
        return reserve(provider, now, max_wait)
    return None


def acquire(provider: str) -> None:
    if "rate_limit" not in settings.PROVIDERS.get(provider, {}):
        return  # no documented limit (alert channels)
    slot = reserve(provider)
    if slot is None:
        next_at = RateSlot.objects.values_list("next_at", flat=True).get(provider=provider)
        raise Deferred(provider, max(0.0, next_at - time.time()))
    wait = slot - time.time()
    if wait > 0:
        time.sleep(wait)
