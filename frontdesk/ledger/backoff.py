"""Retry timing as small pure functions; randomness is injectable so tests can pin it."""

from __future__ import annotations

import random
from collections.abc import Callable


def delay(attempt: int, base: float, cap: float, rand: Callable[[], float] = random.random) -> float:
    """Exponential backoff with full jitter: uniform in [0, min(cap, base·2^(attempt-1))].

    Full jitter spreads retries of many jobs that failed together (a provider outage), so
    they do not return as one burst (AWS Architecture Blog, "Exponential Backoff And Jitter").
    """
    ceiling = min(cap, base * (2 ** max(0, attempt - 1)))
    return ceiling * rand()


def ceiling(attempt: int, base: float, cap: float) -> float:
    return min(cap, base * (2 ** max(0, attempt - 1)))
