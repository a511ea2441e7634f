"""Turning findings into alerts: fire once when a condition starts, repeat while it lasts,
and say when it is resolved. Each message is a job in the ledger, one per channel."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from frontdesk.alerts.models import Alert, EvaluationSlot
from frontdesk.alerts.rules import RULES, Finding
from frontdesk.ledger.enqueue import enqueue
from frontdesk.logs import get_logger

log = get_logger(__name__)
ALERT_PRIORITY = 10


def take_slot(name: str, seconds: float, now: datetime | None = None) -> bool:
    """True for exactly one caller per interval, across all workers (alerts, retention)."""
    now = now or timezone.now()
    EvaluationSlot.objects.get_or_create(name=name, defaults={"next_at": now})
    return EvaluationSlot.objects.filter(name=name, next_at__lte=now).update(
        next_at=now + timedelta(seconds=seconds)) == 1


def channels() -> list[str]:
    cfg = settings.ALERTS
    return [name for name, on in (("slack", cfg["slack_url"]), ("email", cfg["email_to"]),
                                  ("webhook", cfg["webhook_url"])) if on]


def notify(alert: Alert, kind: str) -> None:
    """Queue one message per configured channel; the idempotency key makes it exactly once."""
    text = {"fired": f"[frontdesk] ALERT {alert.rule}: {alert.summary}",
            "repeat": f"[frontdesk] STILL FIRING {alert.rule} (since {alert.started_at:%H:%M} UTC): {alert.summary}",
            "resolved": f"[frontdesk] RESOLVED {alert.rule}: {alert.summary}"}[kind]
    for channel in channels():
        enqueue(f"notify.{channel}", channel, idempotency_key=f"alert:{alert.pk}:{kind}:{alert.notifications}:{channel}",
                correlation_id=f"alert{alert.pk}", priority=ALERT_PRIORITY,
                payload={"alert_id": alert.pk, "kind": kind, "rule": alert.rule, "key": alert.key,
                         "text": text, "summary": alert.summary, "started_at": alert.started_at.isoformat()})


def evaluate(now: datetime | None = None) -> dict[str, list[str]]:
    """Run every rule once; returns the alert keys that fired, repeated and resolved."""
    now = now or timezone.now()
    findings: dict[str, Finding] = {}
    for name, rule in RULES.items():
        try:
            for f in rule(now):
                findings[f.key] = f
        except Exception:  # one broken rule must not silence the others
            log.exception("alert_rule_failed", rule=name)
    outcome: dict[str, list[str]] = {"fired": [], "repeat": [], "resolved": []}
    firing = {a.key: a for a in Alert.objects.filter(status=Alert.FIRING)}
    repeat_after = timedelta(seconds=settings.ALERTS["repeat"])
    for key, finding in findings.items():
        alert = firing.get(key)
        try:
            with transaction.atomic():
                if alert is None:
                    alert = Alert.objects.create(key=key, rule=finding.rule, summary=finding.summary,
                                                 started_at=now, last_sent_at=now, notifications=1)
                    notify(alert, "fired")
                    outcome["fired"].append(key)
                    log.warning("alert_fired", alert=key)
                elif now - alert.last_sent_at >= repeat_after:
                    alert.summary, alert.last_sent_at = finding.summary, now
                    alert.notifications += 1
                    alert.save(update_fields=["summary", "last_sent_at", "notifications"])
                    notify(alert, "repeat")
                    outcome["repeat"].append(key)
        except IntegrityError:
            continue  # another evaluator created it first
    for key, alert in firing.items():
        if key in findings:
            continue
        with transaction.atomic():
            if Alert.objects.filter(pk=alert.pk, status=Alert.FIRING).update(
                    status=Alert.RESOLVED, resolved_at=now, notifications=alert.notifications + 1):
                alert.notifications += 1
                notify(alert, "resolved")
                outcome["resolved"].append(key)
                log.info("alert_resolved", alert=key)
    return outcome
