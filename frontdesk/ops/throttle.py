"""Per-client request limits shared by every web process through the database: a fixed window
counter per key (e.g. "intake:203.0.113.9", "login:203.0.113.9"). Over the limit, the caller
answers 429 with Retry-After."""

from __future__ import annotations

import time

from django.db import IntegrityError, connection, models, transaction


class Hit(models.Model):
    key = models.CharField(max_length=200, primary_key=True)
    window_start = models.FloatField()
    count = models.PositiveIntegerField(default=0)

    class Meta:
        app_label = "ops"


def hit(key: str, limit: int, window: float, now: float | None = None) -> float | None:
    """Count one request for ``key``; return the seconds to wait when it is over ``limit``
    requests per ``window`` seconds, else None. One UPDATE in the common case."""
    now = time.time() if now is None else now
    table = Hit._meta.db_table
    with connection.cursor() as cursor:
        # Same window: count up. Window over: start a new one. One statement either way.
        cursor.execute(
            f"UPDATE {table} SET count = CASE WHEN window_start + %s > %s THEN count + 1 ELSE 1 END, "  # nosec B608  # table name only; values are parameters
            f"window_start = CASE WHEN window_start + %s > %s THEN window_start ELSE %s END "
            f"WHERE key = %s RETURNING count, window_start",
            [window, now, window, now, now, key])
        row = cursor.fetchone()
    if row is None:
        try:
            with transaction.atomic():
                Hit.objects.create(key=key, window_start=now, count=1)
            return None
        except IntegrityError:
            return hit(key, limit, window, now)
    count, start = row
    if count > limit:
        return max(1.0, start + window - now)
    return None


def reset(key: str) -> None:
    Hit.objects.filter(key=key).delete()
