"""Alert rules, and their fire / repeat / resolve lifecycle."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from frontdesk.alerts import rules
from frontdesk.alerts.evaluate import evaluate, take_slot
from frontdesk.alerts.models import Alert
from frontdesk.intake.models import IntakeLog
from frontdesk.ledger.enqueue import enqueue
from frontdesk.ledger.models import Attempt, Job, JobState, ProviderState

pytestmark = pytest.mark.django_db


@pytest.fixture
def channels(settings: Any) -> None:
    settings.ALERTS = {**settings.ALERTS, "slack_url": "http://127.0.0.1:9/services/x",
                       "email_to": ["ops@example.com"], "webhook_url": ""}


def _attempts(outcomes: list[str]) -> None:
    job = enqueue("kit.sync", "kit", idempotency_key=f"k{Job.objects.count()}", correlation_id="c")
    for i, outcome in enumerate(outcomes):
        Attempt.objects.create(job=job, number=i + 1, worker="w", started_at=timezone.now(), outcome=outcome)


def _log(reason: str, status: int = 400, ago: timedelta = timedelta()) -> None:
    IntakeLog.objects.create(provider="stripe", received_at=timezone.now() - ago, status_code=status,
                             reason=reason, latency_ms=1)


def test_failed_jobs_fires_above_the_rate_with_enough_attempts() -> None:
    now = timezone.now()
    _attempts(["transient"] * 4)
    assert rules.failed_jobs(now) == []  # under the minimum of 5 attempts
    _attempts(["succeeded"] * 200)
    assert rules.failed_jobs(now) == []  # 4 of 204 is 2 %: not above
    _attempts(["permanent"])
    [finding] = rules.failed_jobs(now)
    assert "5 of 205 job attempts failed" in finding.summary


def test_no_events_fires_only_after_events_were_flowing() -> None:
    now = timezone.now()
    assert rules.no_events(now) == []
    _log("accepted", 200, ago=timedelta(hours=7))
    [finding] = rules.no_events(now)
    assert "No verified Stripe event for 7.0 h" in finding.summary
    _log("accepted", 200, ago=timedelta(minutes=1))
    assert rules.no_events(now) == []


def test_rejected_signatures_fires_on_a_burst() -> None:
    for _ in range(4):
        _log("bad_signature")
    _log("invalid_json")
    assert rules.rejected_signatures(timezone.now()) == []
    _log("stale_timestamp")
    [finding] = rules.rejected_signatures(timezone.now())
    assert finding.summary.startswith("5 webhook requests with invalid signatures")


def test_review_queue_lists_reasons() -> None:
    job = enqueue("kit.sync", "kit", idempotency_key="r", correlation_id="c")
    assert rules.review_queue(timezone.now()) == []
    Job.objects.filter(pk=job.pk).update(state=JobState.NEEDS_REVIEW, reason_code="kit_invalid_email")
    [finding] = rules.review_queue(timezone.now())
    assert finding.summary == "1 job(s) need review (kit_invalid_email)."


def test_queue_backlog_fires_on_age_or_depth(settings: Any) -> None:
    settings.ALERTS = {**settings.ALERTS, "queue_depth": 3, "queue_age": 600}
    enqueue("kit.sync", "kit", idempotency_key="a", correlation_id="c", run_at=timezone.now() - timedelta(seconds=30))
    assert rules.queue_backlog(timezone.now()) == []
    enqueue("kit.sync", "kit", idempotency_key="b", correlation_id="c", run_at=timezone.now() - timedelta(seconds=700))
    [finding] = rules.queue_backlog(timezone.now())
    assert "oldest due one has waited 70" in finding.summary
    Job.objects.all().delete()
    for i in range(3):
        enqueue("kit.sync", "kit", idempotency_key=f"d{i}", correlation_id="c")
    assert len(rules.queue_backlog(timezone.now())) == 1


def test_provider_blocked_names_each_provider() -> None:
    ProviderState.objects.create(provider="circle", status="paused", reason_code="circle_auth_failed",
                                 blocked_until=timezone.now() + timedelta(minutes=5))
    ProviderState.objects.create(provider="kit", status="rate_limited")
    [finding] = rules.provider_blocked(timezone.now())
    assert finding.key == "provider_blocked:circle"
    assert "credentials were refused" in finding.summary


def test_an_alert_fires_once_repeats_while_it_lasts_and_resolves(channels: None, settings: Any) -> None:
    settings.ALERTS = {**settings.ALERTS, "queue_age": 10**9}  # the notify jobs stay queued here
    now = timezone.now()
    job = enqueue("kit.sync", "kit", idempotency_key="r", correlation_id="c")
    Job.objects.filter(pk=job.pk).update(state=JobState.NEEDS_REVIEW, reason_code="x")
    assert evaluate(now)["fired"] == ["review_queue"]
    assert evaluate(now + timedelta(seconds=15)) == {"fired": [], "repeat": [], "resolved": []}
    notes = Job.objects.filter(kind__startswith="notify.")
    assert sorted(notes.values_list("kind", flat=True)) == ["notify.email", "notify.slack"]
    assert set(notes.values_list("priority", flat=True)) == {10}
    assert "ALERT review_queue" in notes.first().payload["text"]
    later = now + timedelta(seconds=settings.ALERTS["repeat"] + 1)
    assert evaluate(later)["repeat"] == ["review_queue"]
    Job.objects.filter(pk=job.pk).update(state=JobState.SUCCEEDED)
    assert evaluate(later + timedelta(seconds=15))["resolved"] == ["review_queue"]
    alert = Alert.objects.get()
    assert (alert.status, alert.notifications) == ("resolved", 3)
    kinds = [j.payload["kind"] for j in Job.objects.filter(kind="notify.slack").order_by("pk")]
    assert kinds == ["fired", "repeat", "resolved"]
    # It can fire again later as a new alert.
    Job.objects.filter(pk=job.pk).update(state=JobState.NEEDS_REVIEW)
    assert evaluate(later + timedelta(seconds=30))["fired"] == ["review_queue"]
    assert Alert.objects.count() == 2


def test_without_channels_alerts_are_recorded_but_nothing_is_sent(settings: Any) -> None:
    settings.ALERTS = {**settings.ALERTS, "slack_url": "", "email_to": [], "webhook_url": ""}
    ProviderState.objects.create(provider="kit", status="paused", blocked_until=timezone.now() + timedelta(minutes=1))
    evaluate()
    assert Alert.objects.filter(status="firing").count() == 1
    assert not Job.objects.exists()


def test_the_evaluation_slot_is_taken_once_per_interval() -> None:
    now = timezone.now()
    assert take_slot("alerts", 15, now) is True
    assert take_slot("alerts", 15, now) is False
    assert take_slot("alerts", 15, now + timedelta(seconds=16)) is True
