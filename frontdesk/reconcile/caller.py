"""Every reconciliation request goes through :class:`Caller`: the quota check, the shared
rate limit (``ProviderClient.request`` acquires the provider's DB slot), a pace that leaves
most of the lane to delivery, and a few bounded retries."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

import httpx
from django.conf import settings

from frontdesk.connectors.http import RATE_LIMITED, TRANSIENT, ProviderClient, ProviderError
from frontdesk.ledger.ratelimit import Deferred, interval
from frontdesk.reconcile import config
from frontdesk.reconcile.usage import Budget, reconciling

MAX_ATTEMPTS = 5  # per request, for 429s, 5xx and timeouts
MAX_DEFERRED_SECONDS = 900.0  # waiting for a rate slot behind delivery, per request
MAX_BACKOFF_SECONDS = 300.0


class Caller:
    def __init__(self, client: ProviderClient, budget: Budget, *,
                 tick: Callable[[], None] | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.client = client
        self.provider = client.provider
        self.budget = budget
        self.tick = tick  # called after every request and every wait: heartbeat, stop check
        self.sleep = sleep
        share = config.rate_share()
        # After each request wait (1/share − 1) slots: reconciliation then takes at most
        # `share` of the provider's rate limit and delivery jobs get the rest.
        self.pause = interval(self.provider) * (1 / share - 1)

    def get(self, path: str, *, params: dict[str, Any] | None = None,
            ok: Iterable[int] = (200,)) -> httpx.Response:
        attempt, deferred = 0, 0.0
        while True:
            self.budget.check()
            try:
                with reconciling():
                    response = self.client.request("GET", path, params=params, ok=tuple(ok))
            except Deferred as exc:  # no rate slot soon: nothing was sent, nothing to count
                wait = min(max(exc.wait, 0.05), 30.0)
                deferred += wait
                if deferred > MAX_DEFERRED_SECONDS:
                    raise ProviderError(self.provider, TRANSIENT, "reconcile_rate_wait",
                                        f"GET {path}: no rate slot for {deferred:.0f} s") from None
                self.sleep(wait)
                if self.tick is not None:
                    self.tick()
                continue
            except ProviderError as exc:
                self._sent()  # it reached the provider, or may have: it counts
                attempt += 1
                if exc.kind in (TRANSIENT, RATE_LIMITED) and attempt < MAX_ATTEMPTS:
                    self.sleep(self._backoff(exc, attempt))
                    continue
                raise
            self._sent()
            if self.pause > 0:
                self.sleep(self.pause)
            return response

    def _sent(self) -> None:
        self.budget.record()
        if self.tick is not None:
            self.tick()

    def _backoff(self, exc: ProviderError, attempt: int) -> float:
        if exc.retry_after is not None:
            return min(exc.retry_after, MAX_BACKOFF_SECONDS)
        if exc.kind == RATE_LIMITED:
            # No Retry-After from Circle or Kit (circle.md §4, kit.md §2): the lane's wait.
            return float(settings.PROVIDERS[self.provider]["rate_limit_wait"])  # type: ignore[arg-type]
        return min(settings.RETRY_BASE_SECONDS * 2 ** (attempt - 1), settings.RETRY_CAP_SECONDS, MAX_BACKOFF_SECONDS)
