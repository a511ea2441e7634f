"""Each alert rule, proven end to end: inject its fault, and see the message arrive at a fake
Slack, SMTP server or webhook receiver within 60 s, from a worker process running with the
default alert settings (evaluation every 15 s)."""

from __future__ import annotations

import base64
import secrets
import subprocess
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.utils import timezone

from frontdesk.intake.models import IntakeLog
from frontdesk.ledger.models import Job

from .conftest import signed_post, subprocess_env
from .test_delivery import buy
from .test_workers import start_worker, stop

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
DEADLINE = 60.0


@pytest.fixture
def slack() -> Iterator[Any]:
    from frontdesk.fakes.slack import FakeSlack

    with FakeSlack().start() as fake:
        yield fake


@pytest.fixture
def alerting_worker(fakes: Any, slack: Any) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []

    def start(**extra: str) -> subprocess.Popen[bytes]:
        env = subprocess_env(fakes, FRONTDESK_ALERT_SLACK_URL=slack.webhook_url, **extra)
        proc = start_worker(env, name="alerting")
        procs.append(proc)
        # The first evaluation runs at start; wait for it so the fault is measured from a
        # point in the middle of the evaluation cycle, as in real life.
        time.sleep(3)
        return proc

    yield start
    for proc in procs:
        stop(proc)


def wait_for_text(slack: Any, fragment: str, since: float) -> float:
    message = slack.wait_for(lambda m: fragment in m.get("text", ""), timeout=DEADLINE)
    elapsed = time.monotonic() - since
    assert elapsed < DEADLINE, message
    return elapsed


def test_provider_paused_by_a_bad_token_alerts_and_resolves(client: Any, fakes: Any, rules: Any, slack: Any,
                                                            alerting_worker: Any) -> None:
    alerting_worker()
    fault_at = time.monotonic()
    fakes.circle.fail(401)
    buy(client, "paused@example.com")
    wait_for_text(slack, "ALERT provider_blocked", fault_at)
    assert "circle is paused" in slack.messages[-1]["text"]
    fakes.circle.clear_faults()
    wait_for_text(slack, "RESOLVED provider_blocked", time.monotonic())


def test_failed_jobs_above_the_rate_alert(client: Any, fakes: Any, rules: Any, slack: Any, alerting_worker: Any) -> None:
    alerting_worker(FRONTDESK_CIRCUIT_THRESHOLD="100")
    fault_at = time.monotonic()
    fakes.kit.fail(500)
    for i in range(3):
        buy(client, f"fail{i}@example.com")
    wait_for_text(slack, "ALERT failed_jobs", fault_at)


def test_a_burst_of_bad_signatures_alerts(client: Any, rules: Any, slack: Any, alerting_worker: Any) -> None:
    alerting_worker()
    fault_at = time.monotonic()
    for i in range(5):  # the webhook secret was rotated in Stripe but not here
        signed_post(client, {"id": f"evt_rot{i}", "type": "invoice.paid"}, secrets=["whsec_rotated"])
    wait_for_text(slack, "ALERT rejected_signatures", fault_at)
    assert "STRIPE_WEBHOOK_SECRET" in slack.messages[-1]["text"]


def test_jobs_waiting_in_review_alert(client: Any, fakes: Any, rules: Any, slack: Any, alerting_worker: Any) -> None:
    alerting_worker()
    fault_at = time.monotonic()
    fakes.kit.fail(422, path="/v4/subscribers", body={"errors": ["Email address is invalid"]})
    buy(client, "review@example.com")
    wait_for_text(slack, "ALERT review_queue", fault_at)
    assert "kit_invalid_email" in slack.messages[-1]["text"]


def test_a_backlog_alerts(client: Any, fakes: Any, rules: Any, slack: Any, alerting_worker: Any) -> None:
    # The Kit lane is rate-limited far ahead, so its jobs queue up past the threshold.
    alerting_worker(FRONTDESK_ALERT_QUEUE_DEPTH="3", KIT_RATE_LIMIT="1/3600")
    fault_at = time.monotonic()
    for i in range(5):
        buy(client, f"backlog{i}@example.com")
    wait_for_text(slack, "ALERT queue_backlog", fault_at)


def test_silence_after_events_were_flowing_alerts(rules: Any, slack: Any, alerting_worker: Any) -> None:
    alerting_worker()
    fault_at = time.monotonic()
    # The fault: the last verified event is older than the 6 h default silence.
    IntakeLog.objects.create(provider="stripe", received_at=timezone.now() - timezone.timedelta(hours=7),
                             status_code=200, reason="accepted", latency_ms=1)
    wait_for_text(slack, "ALERT no_events", fault_at)


def test_alerts_reach_smtp_and_a_signed_webhook_too(client: Any, fakes: Any, rules: Any, slack: Any,
                                                    alerting_worker: Any) -> None:
    from frontdesk.fakes.receiver import FakeWebhookReceiver
    from frontdesk.fakes.smtp import FakeSMTP

    hook_secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    with FakeSMTP().start() as smtp, FakeWebhookReceiver(hook_secret).start() as receiver:
        alerting_worker(FRONTDESK_ALERT_EMAIL_TO="ops@example.com", FRONTDESK_SMTP_URL=f"smtp://{smtp.host}:{smtp.port}",
                        FRONTDESK_ALERT_WEBHOOK_URL=receiver.url + "/hooks/frontdesk",
                        FRONTDESK_ALERT_WEBHOOK_SECRET=hook_secret)
        fault_at = time.monotonic()
        fakes.circle.fail(401)
        buy(client, "channels@example.com")
        mail = smtp.wait_for(lambda m: "provider_blocked" in str(m.parsed["Subject"]), timeout=DEADLINE)
        assert mail.rcpt_tos == ["ops@example.com"]
        delivery = receiver.wait_for(lambda d: d["body"]["type"] == "alert.fired", timeout=DEADLINE)
        assert delivery["verified"] is True
        assert delivery["body"]["data"]["rule"] == "provider_blocked"
        assert time.monotonic() - fault_at < DEADLINE
    assert Job.objects.filter(kind="notify.email", state="succeeded").exists()
