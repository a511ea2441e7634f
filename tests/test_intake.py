"""POST /webhooks/stripe: verification, storage with its jobs, and the intake log."""

from __future__ import annotations

import json
import time
from typing import Any
from unittest import mock

import pytest
from django.db import OperationalError
from django.utils import timezone

from frontdesk.intake.models import Event, IntakeLog
from frontdesk.ledger.models import Job

from . import stripe_events as se
from .conftest import WEBHOOK_SECRET, signed_post

pytestmark = pytest.mark.django_db


def paid_checkout() -> dict[str, Any]:
    session = se.checkout_session("buyer@example.com", line_items=[se.line_item("price_community", "prod_c")])
    return se.event("checkout.session.completed", session)


def test_it_stores_a_verified_event_with_its_job(client: Any) -> None:
    payload = paid_checkout()
    response = signed_post(client, payload)
    assert response.status_code == 200
    assert response.json()["status"] == "stored"
    event = Event.objects.get(event_id=payload["id"])
    assert (event.type, event.status, event.livemode) == ("checkout.session.completed", "received", False)
    assert json.loads(event.payload) == payload
    assert event.created is not None and int(event.created.timestamp()) == payload["created"]
    job = Job.objects.get(event=event)
    assert (job.kind, job.state, job.correlation_id) == ("stripe.process_event", "queued", event.correlation_id)
    assert (job.payload, job.attempts, job.idempotency_key) == ({}, 0, f"stripe:event:{payload['id']}")
    assert job.run_at <= job.created_at < job.deadline and job.updated_at is not None
    log = IntakeLog.objects.get()
    assert (log.status_code, log.reason, log.event_id, log.source_ip) == (200, "accepted", payload["id"], "127.0.0.1")
    assert log.latency_ms > 0


def test_it_answers_a_duplicate_with_200_and_stores_nothing_new(client: Any) -> None:
    payload = paid_checkout()
    assert signed_post(client, payload).json()["status"] == "stored"
    second = signed_post(client, payload)
    assert second.status_code == 200
    assert second.json()["status"] == "duplicate"
    assert Event.objects.count() == 1
    assert Job.objects.count() == 1
    assert list(IntakeLog.objects.order_by("pk").values_list("reason", flat=True)) == ["accepted", "duplicate"]


def test_a_new_event_whose_job_key_is_taken_is_still_stored_with_a_job(client: Any) -> None:
    # A job can outlive its event (retention keeps them apart): its key must not turn the new
    # event into a "duplicate" that is never stored or processed.
    payload = paid_checkout()
    old = Job.objects.create(kind="stripe.process_event", provider="stripe", correlation_id="old",
                             idempotency_key=f"stripe:event:{payload['id']}", state="succeeded",
                             run_at=timezone.now(), deadline=timezone.now())
    response = signed_post(client, payload)
    assert response.json()["status"] == "stored"
    event = Event.objects.get(event_id=payload["id"])
    job = Job.objects.get(event=event)
    assert job.pk != old.pk and job.state == "queued"
    assert list(IntakeLog.objects.values_list("reason", flat=True)) == ["accepted"]
    assert signed_post(client, payload).json()["status"] == "duplicate"
    assert Job.objects.count() == 2


def test_it_stores_unknown_types_as_ignored_without_jobs(client: Any) -> None:
    payload = se.event("product.created", se.fixture("product"))
    response = signed_post(client, payload)
    assert response.json()["status"] == "ignored"
    event = Event.objects.get()
    assert (event.status, event.status_reason) == ("ignored", "unhandled_type")
    assert not Job.objects.exists()


def test_it_accepts_a_secret_from_a_rotation_list(client: Any, settings: Any) -> None:
    settings.STRIPE_WEBHOOK_SECRETS = ["whsec_new", WEBHOOK_SECRET]
    assert signed_post(client, paid_checkout(), secrets=["whsec_new"]).status_code == 200
    assert signed_post(client, paid_checkout(), secrets=[WEBHOOK_SECRET]).status_code == 200


def _rejected(response: Any, status: int, reason: str) -> None:
    assert response.status_code == status, response.content
    assert response.json()["error"] == reason
    assert not Event.objects.exists()
    assert not Job.objects.exists()
    log = IntakeLog.objects.get()
    assert (log.status_code, log.reason) == (status, reason)


def test_it_rejects_a_bad_signature(client: Any) -> None:
    body = json.dumps(paid_checkout()).encode()
    _rejected(client.post("/webhooks/stripe", data=body, content_type="application/json",
                          HTTP_STRIPE_SIGNATURE=f"t={int(time.time())},v1={'0' * 64}"), 400, "bad_signature")


def test_it_rejects_the_wrong_secret(client: Any) -> None:
    _rejected(signed_post(client, paid_checkout(), secrets=["whsec_wrong"]), 400, "bad_signature")


def test_it_rejects_a_missing_signature(client: Any) -> None:
    _rejected(client.post("/webhooks/stripe", data=b"{}", content_type="application/json"), 400, "missing_signature")


def test_it_rejects_a_stale_timestamp(client: Any) -> None:
    # A minute beyond the 300 s tolerance: the exact boundary is tested with a fixed clock in
    # test_signature.py, and a wall-clock test at +301 s passes the check once a second ticks over.
    _rejected(signed_post(client, paid_checkout(), timestamp=int(time.time()) - 360), 400, "stale_timestamp")


def test_it_rejects_a_future_timestamp(client: Any) -> None:
    _rejected(signed_post(client, paid_checkout(), timestamp=int(time.time()) + 360), 400, "future_timestamp")


def test_it_rejects_malformed_json_even_when_signed(client: Any) -> None:
    _rejected(signed_post(client, b'{"id": "evt_1", "type": '), 400, "invalid_json")


def test_it_rejects_a_json_array(client: Any) -> None:
    _rejected(signed_post(client, b"[1, 2]"), 400, "invalid_json")


@pytest.mark.parametrize(("payload", "reason"), [
    ({"type": "invoice.paid", "object": "event"}, "missing_id"),
    ({"id": "evt_x", "object": "event"}, "missing_type"),
    ({"id": 12, "type": "invoice.paid"}, "missing_id"),
])
def test_it_rejects_events_without_id_or_type(client: Any, payload: dict[str, Any], reason: str) -> None:
    _rejected(signed_post(client, payload), 400, reason)


def test_it_rejects_a_thin_event_with_a_reason(client: Any) -> None:
    thin = json.loads((se.FIXTURES.parent / "stripe-python-tests" / "thin_event_minimal.json").read_text())
    _rejected(signed_post(client, thin), 400, "thin_event")


def test_it_rejects_an_oversized_body(client: Any) -> None:
    body = json.dumps({"id": "evt_big", "type": "invoice.paid", "pad": "x" * (256 * 1024)}).encode()
    _rejected(signed_post(client, body), 413, "body_too_large")


def test_it_answers_503_when_the_database_is_down(client: Any) -> None:
    with mock.patch("frontdesk.intake.storage._insert", side_effect=OperationalError("down")):
        response = signed_post(client, paid_checkout())
    assert response.status_code == 503
    assert response.json()["error"] == "database_unavailable"
    assert not Event.objects.exists()


def test_it_only_accepts_post(client: Any) -> None:
    assert client.get("/webhooks/stripe").status_code == 405


def test_it_ignores_a_test_mode_event_when_configured_for_live(client: Any, settings: Any) -> None:
    settings.STRIPE_API_KEY = "sk_live_abc"
    response = signed_post(client, paid_checkout())
    assert response.json()["status"] == "ignored"
    assert Event.objects.get().status_reason == "livemode_mismatch"
    assert not Job.objects.exists()


def test_rejected_requests_log_no_body_or_secret(client: Any) -> None:
    signed_post(client, paid_checkout(), secrets=["whsec_wrong"])
    row = IntakeLog.objects.values().get()
    text = json.dumps(row, default=str)
    assert "whsec" not in text
    assert "buyer@example.com" not in text
