"""Provider lanes: the circuit breaker, the pause for bad credentials and rate-limit waits.

All state lives in ProviderState rows so every worker process, on any host, agrees. A blocked
provider's jobs are not claimed; when the block ends, one worker wins a conditional UPDATE and
runs a single job as the probe, and its outcome reopens or closes the lane.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import F
from django.utils import timezone

from frontdesk.ledger.models import ProviderState
from frontdesk.logs import get_logger

log = get_logger(__name__)
PROBE_SECONDS = 30.0  # how long other workers hold back while one probe runs


def state(provider: str) -> ProviderState:
    return ProviderState.objects.get_or_create(provider=provider)[0]


def blocked_providers(now: datetime | None = None) -> list[str]:
    now = now or timezone.now()
    return list(
        ProviderState.objects.exclude(status=ProviderState.OK)
        .filter(blocked_until__gt=now)
        .values_list("provider", flat=True)
    )


def take_probe(provider: str, now: datetime | None = None) -> ProviderState | None:
    """The lane's state if this caller may run a job of ``provider`` now, else None. For a lane
    whose block has run out, only one caller wins: it pushes blocked_until forward while its
    probe runs."""
    now = now or timezone.now()
    row = state(provider)
    if row.status == ProviderState.OK:
        return row
    if row.blocked_until and row.blocked_until > now:
        return None
    won = ProviderState.objects.filter(
        provider=provider, status=row.status, blocked_until=row.blocked_until
    ).update(blocked_until=now + timedelta(seconds=PROBE_SECONDS))
    return row if won == 1 else None


def record_success(provider: str, seen: ProviderState | None = None) -> None:
    """Close the lane and reset its failure count, unless ``seen`` (the state read before the
    job ran) was already clean: the usual case costs no write."""
    if seen is not None and seen.status == ProviderState.OK and seen.consecutive_failures == 0:
        return
    updated = ProviderState.objects.filter(provider=provider).exclude(
        status=ProviderState.OK, consecutive_failures=0
    ).update(status=ProviderState.OK, consecutive_failures=0, cooldown_seconds=0,
             blocked_until=None, reason_code="", message="")
    if updated:
        log.info("provider_recovered", provider=provider)


def record_transient(provider: str, reason: str, message: str) -> None:
    """Count a transient failure; at the threshold, open the circuit (doubling the cooldown
    each time a probe fails, up to CIRCUIT_MAX_COOLDOWN)."""
    state(provider)
    ProviderState.objects.filter(provider=provider).update(consecutive_failures=F("consecutive_failures") + 1)
    row = ProviderState.objects.get(provider=provider)
    if row.consecutive_failures < settings.CIRCUIT_THRESHOLD:
        return
    doubled = row.cooldown_seconds * 2 if row.status == ProviderState.CIRCUIT_OPEN else 0
    cooldown = min(settings.CIRCUIT_MAX_COOLDOWN_SECONDS, max(doubled, settings.CIRCUIT_COOLDOWN_SECONDS))
    block(provider, ProviderState.CIRCUIT_OPEN, reason, message, cooldown)


def block(provider: str, status: str, reason: str, message: str, seconds: float) -> datetime:
    until = timezone.now() + timedelta(seconds=seconds)
    state(provider)
    ProviderState.objects.filter(provider=provider).update(
        status=status, reason_code=reason, message=message, blocked_until=until, cooldown_seconds=seconds
    )
    log.warning("provider_blocked", provider=provider, status=status, reason=reason, seconds=round(seconds, 2))
    return until
