"""The monthly request counter and the budget a reconciliation may spend from it."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime

from django.db import IntegrityError, transaction
from django.db.models import F, Sum
from django.utils import timezone

from frontdesk.reconcile import config
from frontdesk.reconcile.models import ProviderUsage

# True while reconciliation sends a request: it counts those itself (source "reconcile").
_reconciling: ContextVar[bool] = ContextVar("reconciling", default=False)


class QuotaReserveReached(Exception):
    """The next request(s) would eat into the share of the monthly quota kept for delivery."""


def month_of(now: datetime | None = None) -> str:
    # Circle does not say in which time zone its month turns (circle.md §4); UTC it is.
    return (now or timezone.now()).astimezone(UTC).strftime("%Y-%m")


def count_request(provider: str, source: str = "reconcile", n: int = 1, now: datetime | None = None) -> None:
    """Add ``n`` requests to this month's counter: one UPDATE, or an INSERT the first time."""
    month = month_of(now)
    rows = ProviderUsage.objects.filter(provider=provider, month=month, source=source)
    if rows.update(requests=F("requests") + n):
        return
    try:
        with transaction.atomic():  # a savepoint: losing the insert race must not spoil the caller's transaction
            ProviderUsage.objects.create(provider=provider, month=month, source=source, requests=n)
    except IntegrityError:
        rows.update(requests=F("requests") + n)


def count_delivery_request(provider: str) -> None:
    """For ``ProviderClient.request``: count one request of a provider that has a monthly
    quota, unless reconciliation is sending it (it has counted it already)."""
    if not _reconciling.get() and provider in config.PROVIDERS and config.monthly_quota(provider):
        count_request(provider, source="delivery")


@contextmanager
def reconciling() -> Iterator[None]:
    token = _reconciling.set(True)
    try:
        yield
    finally:
        _reconciling.reset(token)


def used(provider: str, now: datetime | None = None) -> int:
    """Requests counted this month, from every source."""
    total = ProviderUsage.objects.filter(provider=provider, month=month_of(now)).aggregate(n=Sum("requests"))["n"]
    return int(total or 0)


class Budget:
    """What one reconciliation pass may still send to ``provider`` this month.

    The cap is quota × (1 − reserve) of *all* counted requests, so the reserve stays for
    delivery; the counter is read from the database before each request because other
    processes (delivery, another run) spend from the same month."""

    def __init__(self, provider: str) -> None:
        self.provider = provider
        self.quota = config.monthly_quota(provider)
        self.reserve = config.quota_reserve()
        self.limit: int | None = math.floor(self.quota * (1 - self.reserve)) if self.quota else None
        self.spent = 0

    def remaining(self) -> int | None:
        if self.limit is None:
            return None
        return max(0, self.limit - used(self.provider))

    def check(self, n: int = 1) -> None:
        remaining = self.remaining()
        if remaining is not None and n > remaining:
            raise QuotaReserveReached(
                f"{self.provider}: {n} more request(s) would pass {self.limit} of the monthly quota of "
                f"{self.quota} ({self.reserve:.0%} is kept for delivery); {remaining} left")

    def record(self) -> None:
        count_request(self.provider)
        self.spent += 1
