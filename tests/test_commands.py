"""Operator commands and health endpoints."""

from __future__ import annotations

import json
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from frontdesk.intake.models import Event
from frontdesk.ledger.models import Job, JobState, WorkerHeartbeat

from .conftest import drain
from .test_delivery import buy

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_jobs_list_filters_by_state_and_prints_json(client: Any, fakes: Any, rules: Any) -> None:
    fakes.kit.fail(422, path="/v4/subscribers", method="POST", body={"errors": ["Email address is invalid"]})
    buy(client, "someone@example.net")
    drain()
    rows = json.loads(run("jobs", "list", "--json"))
    assert {r["kind"] for r in rows} == {"stripe.process_event", "circle.sync", "kit.sync"}
    review = json.loads(run("jobs", "list", "--state", "needs_review", "--json"))
    assert [(r["kind"], r["reason_code"]) for r in review] == [("kit.sync", "kit_invalid_email")]
    assert "kit_invalid_email" in run("jobs", "list")


def test_jobs_retry_requeues_review_jobs_by_id_or_state(client: Any, fakes: Any, rules: Any) -> None:
    fakes.kit.fail(422, path="/v4/subscribers", method="POST", body={"errors": ["Email address is invalid"]})
    buy(client, "someone@example.net")
    drain()
    job = Job.objects.get(state=JobState.NEEDS_REVIEW)
    assert "queued 1 job" in run("jobs", "retry", str(job.pk))
    job.refresh_from_db()
    assert job.state == JobState.QUEUED
    drain()
    assert Job.objects.get(pk=job.pk).state == JobState.NEEDS_REVIEW  # Kit still refuses it
    assert "queued 1 job" in run("jobs", "retry", "--state", "needs_review")
    with pytest.raises(CommandError, match="no job with id 999999"):
        run("jobs", "retry", "999999")
    with pytest.raises(CommandError, match="not both and not neither"):
        run("jobs", "retry")
    succeeded = Job.objects.filter(state=JobState.SUCCEEDED).first()
    with pytest.raises(CommandError, match="is succeeded; only jobs that are not running or done"):
        run("jobs", "retry", str(succeeded.pk))


def test_events_replay_reprocesses_without_new_side_effects(client: Any, fakes: Any, rules: Any) -> None:
    payload = buy(client, "replay@example.com")
    drain()
    changed_before = sum(c.changed for c in fakes.circle.calls + fakes.kit.calls)
    assert "to replay" in run("events", "replay", payload["id"])
    drain()
    assert Job.objects.filter(kind="stripe.process_event", state="succeeded").count() == 2
    assert sum(c.changed for c in fakes.circle.calls + fakes.kit.calls) == changed_before
    assert Event.objects.get().status == "processed"
    with pytest.raises(CommandError, match="no stored event"):
        run("events", "replay", "evt_missing")


def test_send_test_event_reaches_a_running_service(live_server: Any, fakes: Any, rules: Any, settings: Any) -> None:
    out = run("send_test_event", "--email", "demo@example.com", "--price", "price_community",
              "--url", f"{live_server.url}/webhooks/stripe")
    assert '"status": "stored"' in out
    drain()
    assert fakes.circle.member("demo@example.com")["space_ids"] == {101, 102}
    assert fakes.kit.subscriber("demo@example.com")["tag_ids"] == {501, 502}


def test_send_test_event_explains_an_unreachable_service() -> None:
    with pytest.raises(CommandError, match="could not reach"):
        run("send_test_event", "--email", "a@example.com", "--price", "p", "--url", "http://127.0.0.1:9/webhooks/stripe")


def test_healthz_answers_while_the_process_is_up(client: Any) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}


def test_readyz_needs_a_recent_worker(client: Any) -> None:
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["worker"].startswith("no worker")
    now = timezone.now()
    WorkerHeartbeat.objects.create(worker_id="w", hostname="h", pid=1, started_at=now, seen_at=now)
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"] == {"database": "ok", "migrations": "ok", "worker": "ok"}
