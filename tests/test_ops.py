"""Doctor, metrics, retention and change awareness."""

from __future__ import annotations

import json
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.utils import timezone

from frontdesk.audit.models import AuditEntry, ConfigSnapshot
from frontdesk.intake.models import Event, IntakeLog
from frontdesk.ledger.models import Attempt, Job, WorkerHeartbeat
from frontdesk.ops import doctor, fingerprint, retention

from .conftest import drain
from .test_delivery import buy

pytestmark = pytest.mark.django_db


def findings(level: str | None = None) -> list[doctor.Finding]:
    return [f for f in doctor.run_checks() if level is None or f.level == level]


@pytest.fixture
def healthy(fakes: Any, rules: Any, settings: Any) -> Any:
    now = timezone.now()
    WorkerHeartbeat.objects.create(worker_id="w", hostname="h", pid=1, started_at=now, seen_at=now)
    IntakeLog.objects.create(provider="stripe", received_at=now, status_code=200, reason="accepted", latency_ms=1)
    return fakes


def test_doctor_passes_on_a_healthy_setup(healthy: Any) -> None:
    assert findings("error") == []
    checks = {f.check for f in findings("ok")}
    assert {"database", "worker", "webhook", "circle", "kit"} <= checks
    out = StringIO()
    call_command("doctor", stdout=out)
    assert "no problems found" in out.getvalue()


def test_doctor_catches_a_missing_kit_tag(healthy: Any) -> None:
    healthy.kit.tags.pop(502)
    [problem] = findings("error")
    assert problem.message == "Kit has no tag 502, which the rules name."
    assert "rules file" in problem.fix


def test_doctor_catches_an_invalid_circle_token(healthy: Any, settings: Any) -> None:
    settings.CIRCLE_API_TOKEN = "revoked"
    [problem] = findings("error")
    assert problem.check == "circle"
    assert "credentials were refused (401)" in problem.message
    assert "revoked" not in problem.message  # the token itself never appears


def test_doctor_catches_a_missing_setting_and_exits_non_zero(healthy: Any, settings: Any) -> None:
    settings.KIT_API_KEY = ""
    problems = findings("error")
    assert [p.message for p in problems] == ["KIT_API_KEY is not set."]
    assert "KIT_API_KEY_FILE" in problems[0].fix
    with pytest.raises(SystemExit) as exit_:
        call_command("doctor", stdout=StringIO(), stderr=StringIO())
    assert exit_.value.code == 1


def test_doctor_catches_missing_circle_targets_and_kit_fields(healthy: Any) -> None:
    healthy.circle.spaces.pop(102)
    healthy.circle.access_groups.pop(301)
    healthy.kit.custom_fields.clear()
    messages = {f.message for f in findings("error")}
    assert "Circle has no space 102, which the rules name." in messages
    assert "Circle has no access group 301, which the rules name." in messages
    assert "Kit has no custom field with key 'plan', which the rules set." in messages


def test_doctor_reports_no_worker_and_a_quiet_webhook(fakes: Any, rules: Any) -> None:
    messages = " ".join(f.message for f in findings())
    assert "No worker has been seen" in messages
    assert "has not verified any event yet" in messages


def test_doctor_json_output(healthy: Any) -> None:
    out = StringIO()
    call_command("doctor", "--json", stdout=out)
    assert {"level", "check", "message", "fix"} <= set(json.loads(out.getvalue().split("\nno problems")[0])[0])


def test_metrics_need_the_token(client: Any, settings: Any) -> None:
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics").status_code == 404
    settings.METRICS_TOKEN = "scrape-me"
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401


def test_metrics_report_intake_jobs_and_queue(client: Any, fakes: Any, rules: Any, settings: Any) -> None:
    settings.METRICS_TOKEN = "scrape-me"
    buy(client, "metrics@example.com")
    drain()
    fakes.kit.fail(422, path="/v4/subscribers", body={"errors": ["Email address is invalid"]})
    buy(client, "second@example.com")
    drain()
    text = client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-me").content.decode()
    assert 'frontdesk_events_received_total{outcome="stored",provider="stripe",type="checkout.session.completed"}' in text
    assert "frontdesk_intake_latency_seconds_bucket" in text
    assert 'frontdesk_jobs{provider="kit",reason="kit_invalid_email",state="needs_review"} 1.0' in text
    assert "frontdesk_review_queue_size 1.0" in text
    assert "frontdesk_queue_depth 0.0" in text
    assert 'frontdesk_job_attempts_total{kind="circle.sync",outcome="succeeded",provider="circle",reason=""}' in text
    assert "frontdesk_attempt_duration_seconds_count" in text
    assert "metrics@example.com" not in text


def test_retention_prunes_old_rows_in_batches(client: Any, fakes: Any, rules: Any, settings: Any) -> None:
    buy(client, "old@example.com")
    drain()
    keep_review = Job.objects.filter(kind="kit.sync").first()
    Job.objects.filter(pk=keep_review.pk).update(state="needs_review")
    long_ago = timezone.now() - timedelta(days=400)
    Event.objects.update(received_at=long_ago)
    IntakeLog.objects.update(received_at=long_ago)
    Job.objects.update(updated_at=long_ago)
    counts = retention.prune()
    assert counts == {"payloads": 1, "intake_log": 1, "finished_jobs": 2, "reconcile_runs": 0}
    assert Event.objects.get().payload == ""  # the row and its outcome stay
    assert list(Job.objects.values_list("pk", flat=True)) == [keep_review.pk]
    assert Attempt.objects.filter(job_id=keep_review.pk).exists()
    assert retention.prune() == {"payloads": 0, "intake_log": 0, "finished_jobs": 0, "reconcile_runs": 0}


def test_change_awareness_records_what_changed_without_values(monkeypatch: pytest.MonkeyPatch, rules: Any) -> None:
    monkeypatch.setenv("KIT_API_KEY", "kit-secret-one")
    assert fingerprint.record_start("worker")  # first start
    assert fingerprint.record_start("worker") == {}  # nothing changed
    monkeypatch.setenv("KIT_API_KEY", "kit-secret-two")
    monkeypatch.setenv("FRONTDESK_ALERT_SLACK_URL", "https://hooks.slack.com/services/x")
    diff = fingerprint.record_start("web")
    assert diff == {"KIT_API_KEY": "changed", "FRONTDESK_ALERT_SLACK_URL": "added"}
    entry = AuditEntry.objects.filter(action="config_changed").get()
    text = json.dumps([entry.before, entry.after, entry.reason])
    assert "kit-secret" not in text and "hooks.slack.com" not in text
    assert ConfigSnapshot.objects.count() == 2
    from frontdesk.rules.loading import load_text
    load_text((__import__("pathlib").Path(__file__).parent / "rules.yaml").read_text() + "\n# v2\n", "r.yaml")
    assert fingerprint.record_start("worker") == {"rules_version": {"from": 1, "to": 2}}


def test_the_throttle_counts_per_key_and_window() -> None:
    from frontdesk.ops import throttle

    assert [throttle.hit("login:1.2.3.4", 2, 60, now=1000.0) for _ in range(2)] == [None, None]
    assert throttle.hit("login:1.2.3.4", 2, 60, now=1010.0) == 50.0
    assert throttle.hit("login:5.6.7.8", 2, 60, now=1010.0) is None  # another client
    assert throttle.hit("login:1.2.3.4", 2, 60, now=1061.0) is None  # a new window
