"""Alert conditions. Each rule looks at the database and returns what is wrong right now;
the evaluator turns starts, repeats and ends of those findings into notifications."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Min

from frontdesk.intake.models import IntakeLog
from frontdesk.ledger.models import PENDING_STATES, Attempt, Job, JobState, ProviderState

SIGNATURE_REASONS = ("bad_signature", "stale_timestamp", "future_timestamp", "malformed_signature", "missing_signature")


@dataclass(frozen=True)
class Finding:
    key: str
    rule: str
    summary: str


def failed_jobs(now: datetime) -> list[Finding]:
    cfg = settings.ALERTS
    since = now - timedelta(seconds=cfg["failure_window"])
    attempts = Attempt.objects.filter(started_at__gte=since).exclude(outcome__in=("", "lost", "paused"))
    total = attempts.count()
    failed = attempts.exclude(outcome="succeeded").count()
    if total < cfg["failure_min_attempts"] or failed / total <= cfg["failure_rate"]:
        return []
    minutes = int(cfg["failure_window"] // 60)
    return [Finding("failed_jobs", "failed_jobs",
                    f"{failed} of {total} job attempts failed in the last {minutes} min "
                    f"({failed / total:.0%}, threshold {cfg['failure_rate']:.0%}).")]


def no_events(now: datetime) -> list[Finding]:
    silence = settings.ALERTS["silence"]
    if not silence:
        return []
    accepted = IntakeLog.objects.filter(provider="stripe", status_code=200)
    last = accepted.order_by("-received_at").values_list("received_at", flat=True).first()
    # Only while events were expected: something arrived in the week before the quiet spell.
    if last is None or last > now - timedelta(seconds=silence) or last < now - timedelta(days=7, seconds=silence):
        return []
    hours = (now - last).total_seconds() / 3600
    return [Finding("no_events", "no_events",
                    f"No verified Stripe event for {hours:.1f} h (last at {last:%Y-%m-%d %H:%M} UTC). "
                    "Check the webhook endpoint in Stripe's dashboard.")]


def rejected_signatures(now: datetime) -> list[Finding]:
    threshold = settings.ALERTS["rejected_signatures"]
    count = IntakeLog.objects.filter(received_at__gte=now - timedelta(minutes=5),
                                     reason__in=SIGNATURE_REASONS).count()
    if count < threshold:
        return []
    return [Finding("rejected_signatures", "rejected_signatures",
                    f"{count} webhook requests with invalid signatures in 5 min: was the Stripe webhook "
                    "secret rotated? Set STRIPE_WEBHOOK_SECRET to the endpoint's current whsec_ value.")]


def review_queue(now: datetime) -> list[Finding]:
    count = Job.objects.filter(state=JobState.NEEDS_REVIEW).count()
    if count < settings.ALERTS["review_jobs"]:
        return []
    reasons = ", ".join(sorted(set(Job.objects.filter(state=JobState.NEEDS_REVIEW)
                                   .values_list("reason_code", flat=True)[:200])))
    return [Finding("review_queue", "review_queue", f"{count} job(s) need review ({reasons}).")]


def queue_backlog(now: datetime) -> list[Finding]:
    cfg = settings.ALERTS
    pending = Job.objects.filter(state__in=PENDING_STATES)  # due, or waiting on a retry or a rate limit
    depth = pending.count()
    oldest = pending.filter(run_at__lte=now).aggregate(m=Min("run_at"))["m"]
    age = (now - oldest).total_seconds() if oldest else 0.0
    if depth < cfg["queue_depth"] and age < cfg["queue_age"]:
        return []
    return [Finding("queue_backlog", "queue_backlog",
                    f"{depth} job(s) waiting; the oldest due one has waited {age:.0f} s. "
                    "Are enough workers running, or is a provider lane blocked?")]


def provider_blocked(now: datetime) -> list[Finding]:
    findings = []
    for state in ProviderState.objects.filter(status__in=(ProviderState.PAUSED, ProviderState.CIRCUIT_OPEN)):
        what = "paused: its credentials were refused" if state.status == ProviderState.PAUSED else \
            "circuit open after repeated failures"
        findings.append(Finding(f"provider_blocked:{state.provider}", "provider_blocked",
                                f"{state.provider} is {what} ({state.reason_code}). Its jobs wait and resume "
                                "by themselves once a probe succeeds."))
    return findings


RULES: dict[str, Callable[[datetime], list[Finding]]] = {
    "failed_jobs": failed_jobs,
    "no_events": no_events,
    "rejected_signatures": rejected_signatures,
    "review_queue": review_queue,
    "queue_backlog": queue_backlog,
    "provider_blocked": provider_blocked,
}
