"""Reconciliation settings, read from the environment when asked (not at import), so a change
in the environment (or a test's monkeypatch) applies to the next run without a restart."""

from __future__ import annotations

from frontdesk import conf
from frontdesk.conf import ConfigError

PROVIDERS = ("circle", "kit")
REPAIR, REPORT = "repair", "report"

# Circle counts Admin API calls per calendar month (circle.md §4; Business plan 5,000). Kit
# documents no monthly quota, only a rate limit (kit.md §3): 0 means "no quota".
DEFAULT_MONTHLY_QUOTA = {"circle": 5000, "kit": 0}


def policy(provider: str) -> str:
    """``repair``: correct the applied state and queue a sync; ``report``: record only."""
    return conf.choice(f"RECONCILE_{provider.upper()}_POLICY", REPAIR, (REPAIR, REPORT))


def interval() -> float:
    """Seconds between scheduled sweeps; 0 turns the schedule off (the command still works)."""
    return conf.number("RECONCILE_INTERVAL", 86400.0, minimum=0)


def monthly_quota(provider: str) -> int:
    """Requests per calendar month the provider allows; 0 = no quota."""
    return conf.integer(f"{provider.upper()}_MONTHLY_QUOTA", DEFAULT_MONTHLY_QUOTA[provider], minimum=0)


def quota_reserve() -> float:
    """Share of the monthly quota reconciliation never touches, kept for delivery."""
    value = conf.number("RECONCILE_QUOTA_RESERVE", 0.2, minimum=0)
    if value >= 1:
        raise ConfigError(f"RECONCILE_QUOTA_RESERVE={value} must be below 1 (a share, e.g. 0.2).")
    return value


def rate_share() -> float:
    """Largest share of a provider's rate limit reconciliation may take; delivery jobs share
    the same lane (ledger.ratelimit), so a sweep must not starve them."""
    value = conf.number("RECONCILE_RATE_SHARE", 0.5, minimum=0.01)
    if value > 1:
        raise ConfigError(f"RECONCILE_RATE_SHARE={value} must be at most 1.")
    return value
