"""What viewers read: events, jobs, customers, rules and the health summary, with filters and
pages."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from frontdesk.alerts.models import Alert
from frontdesk.customers.models import Customer
from frontdesk.intake.models import Event
from frontdesk.ledger.models import Job, ProviderState, WorkerHeartbeat

from ..conftest import signed_post
from .conftest import Api

pytestmark = pytest.mark.django_db


def iso(dt: Any) -> str:
    return dt.isoformat().replace("+00:00", "Z")


def test_events_list_newest_first_with_filters(api: Api, world: Any) -> None:
    page = api.get("/events")
    assert [e["event_id"] for e in page["items"]] == [world.second["id"], world.first["id"]]
    assert page["next_cursor"] is None
    first = page["items"][1]
    assert (first["type"], first["status"], first["provider"]) == ("checkout.session.completed", "processed", "stripe")
    ada = Customer.objects.get(email="ada@example.com")
    assert first["customer_id"] == ada.pk
    assert [e["event_id"] for e in api.get("/events", customer=ada.pk)["items"]] == [world.first["id"]]
    assert len(api.get("/events", type="checkout.session.completed", status="processed")["items"]) == 2
    assert api.get("/events", type="invoice.paid")["items"] == []
    assert api.get("/events", status="failed")["items"] == []
    later = timezone.now() + timedelta(minutes=1)
    assert api.get("/events", since=iso(later))["items"] == []
    assert len(api.get("/events", until=iso(later))["items"]) == 2
    received = Event.objects.get(event_id=world.second["id"]).received_at
    assert [e["event_id"] for e in api.get("/events", since=iso(received))["items"]] == [world.second["id"]]


def test_pages_follow_the_cursor(api: Api, world: Any) -> None:
    first = api.get("/jobs", limit=2)
    assert len(first["items"]) == 2 and first["next_cursor"]
    seen = [j["id"] for j in first["items"]]
    cursor = first["next_cursor"]
    while cursor:
        page = api.get("/jobs", limit=2, cursor=cursor)
        seen += [j["id"] for j in page["items"]]
        cursor = page["next_cursor"]
    assert seen == sorted(Job.objects.values_list("pk", flat=True), reverse=True)
    assert len(api.get("/jobs", limit=100)["items"]) == Job.objects.count()


@pytest.mark.parametrize("query,detail", [
    ({"limit": 0}, "at least 1"), ({"limit": 101}, "at most 100"), ({"limit": "ten"}, "whole number"),
    ({"cursor": "abc"}, "expected form"), ({"status": "lost"}, "one of"), ({"since": "yesterday"}, "date-time"),
    ({"since": "2026-01-01"}, "date-time"), ({"until": "2026-13-45T00:00:00Z"}, "not a valid"),
    ({"since": "0001-01-01T00:00:00+23:00"}, "not a valid"), ({"customer": "x"}, "whole number"),
    ({"customer": "99999999999999999999999"}, "whole number"), ({"type": "a\x00b"}, "NUL"),
    ({"type": "x" * 101}, "longer than"),
])
def test_bad_query_parameters_are_400(api: Api, world: Any, query: dict[str, Any], detail: str) -> None:
    body = api.get("/events", expect=400, **query)
    assert body["error"] == "bad_request" and detail in body["detail"]


def test_one_event_with_its_payload_and_jobs(api: Api, world: Any) -> None:
    event = api.get(f"/events/{world.first['id']}")
    assert event["payload"]["id"] == world.first["id"]
    assert event["payload"]["data"]["object"]["customer_details"]["email"] == "ada@example.com"
    assert [(j["kind"], j["state"]) for j in event["jobs"]] == [("stripe.process_event", "succeeded")]
    Event.objects.filter(event_id=world.first["id"]).update(payload="")  # pruned
    assert api.get(f"/events/{world.first['id']}")["payload"] is None
    assert api.get("/events/evt_nope", expect=404) == {"error": "not_found", "detail": "no stored event evt_nope"}


def test_jobs_filters_and_one_job_with_attempts(api: Api, world: Any) -> None:
    review = api.get("/jobs", state="needs_review")["items"]
    assert [j["id"] for j in review] == [world.review.pk]
    assert review[0]["reason_code"] == world.review.reason_code and review[0]["provider"] == "kit"
    assert review[0]["event_id"] is None  # syncs follow the customer, not one event
    processing = api.get("/jobs", kind="stripe.process_event")["items"]
    assert [j["event_id"] for j in processing] == [world.second["id"], world.first["id"]]
    assert {j["kind"] for j in api.get("/jobs", provider="kit")["items"]} == {"kit.sync"}
    assert [j["id"] for j in api.get("/jobs", reason=world.review.reason_code)["items"]] == [world.review.pk]
    assert len(api.get("/jobs", kind="circle.sync")["items"]) == 2
    assert api.get("/jobs", kind="circle.sync", state="needs_review")["items"] == []
    job = api.get(f"/jobs/{world.review.pk}")
    assert job["attempt_history"][0]["http_status"] == 422
    assert job["attempt_history"][0]["outcome"] == "permanent"
    assert api.get("/jobs/999999", expect=404)["detail"] == "no job 999999"
    assert api.get("/jobs", state="paused", expect=400)["error"] == "bad_request"


def test_customers_search_and_detail(api: Api, world: Any) -> None:
    ada = Customer.objects.get(email="ada@example.com")
    assert [c["id"] for c in api.get("/customers", q="ada@")["items"]] == [ada.pk]
    assert [c["id"] for c in api.get("/customers", q="ADA@example.com")["items"]] == [ada.pk]
    assert [c["id"] for c in api.get("/customers", q=ada.stripe_customer_id)["items"]] == [ada.pk]
    assert [c["id"] for c in api.get("/customers", q=str(ada.pk))["items"]] == [ada.pk]
    assert len(api.get("/customers")["items"]) == 2
    assert api.get("/customers", q="nobody@example.com")["items"] == []
    assert api.get("/customers", q="9" * 25)["items"] == []
    listed = api.get("/customers", q="ada")["items"][0]
    assert listed["access"] == ["community"]

    detail = api.get(f"/customers/{ada.pk}")
    assert detail["email"] == "ada@example.com" and detail["access"] == ["community"]
    assert [(e["name"], e["status"], e["source_type"], e["rules_version"]) for e in detail["entitlements"]] == [
        ("community", "active", "checkout_session", 1)]
    assert detail["history"][0]["after"] == "active" and detail["history"][0]["cause"].startswith("event:")
    assert {o["object_type"] for o in detail["stripe_objects"]} >= {"checkout_session"}
    assert detail["explain"][0].startswith(f"Customer {ada.pk}: ada@example.com")
    assert any(line.startswith("Has access to: community") for line in detail["explain"])
    assert detail["conflicts"] == [] and detail["overrides"] == []
    assert {p["provider"] for p in detail["providers"]} >= {"circle"}
    assert {j["kind"] for j in detail["jobs"]} >= {"circle.sync", "kit.sync"}
    assert api.get("/customers/999999", expect=404)["detail"] == "no customer 999999"


def test_rules_versions_and_current(api: Api, rules: Any) -> None:
    versions = api.get("/rules")
    assert [v["number"] for v in versions["items"]] == [1]
    current = api.get("/rules/current")
    assert current["number"] == 1 and "entitlements:" in current["content"]
    assert set(current["parsed"]["entitlements"]) == {"community", "course"}


def test_no_rules_yet_is_a_404(api: Api) -> None:
    assert api.get("/rules/current", expect=404)["error"] == "not_found"
    assert api.get("/rules") == {"items": [], "next_cursor": None}


def test_health_summarises_what_needs_attention(api: Api, world: Any, client: Any) -> None:
    signed_post(client, {"id": "evt_x", "type": "invoice.paid"}, secrets=["whsec_wrong"])
    now = timezone.now()
    Alert.objects.create(key="review_queue", rule="review_queue", summary="1 job(s) need review", started_at=now,
                         last_sent_at=now)
    Alert.objects.create(key="old", rule="no_events", summary="over", status=Alert.RESOLVED, started_at=now,
                         last_sent_at=now, resolved_at=now)
    ProviderState.objects.update_or_create(provider="kit", defaults={
        "status": ProviderState.PAUSED, "reason_code": "kit_unauthorized", "blocked_until": now + timedelta(minutes=5),
        "message": "401 for Bearer kit-secret-value from ada@example.com"})
    WorkerHeartbeat.objects.create(worker_id="w1", hostname="h", pid=1, started_at=now, seen_at=now)
    WorkerHeartbeat.objects.create(worker_id="w0", hostname="h", pid=2, started_at=now, seen_at=now - timedelta(hours=1))
    Job.objects.filter(pk=world.review.pk).update(state="queued", run_at=now - timedelta(seconds=30))

    health = api.get("/health")
    assert health["intake"]["last_event"]["stripe"]["event_id"] == world.second["id"]
    assert health["intake"]["rejected_24h"] == 1
    assert health["intake"]["rejected_24h_by_reason"] == {"bad_signature": 1}
    assert {"provider": "kit", "reason_code": world.review.reason_code, "count": 1} in health["failures_24h"]
    assert health["review_queue"] == {"count": 0, "by_reason": {}}
    assert health["queue"]["due"] == 1 and health["queue"]["oldest_due_seconds"] >= 30
    lane = next(lane for lane in health["provider_lanes"] if lane["provider"] == "kit")
    assert lane["blocked"] is True and lane["status"] == "paused"
    assert "kit-secret-value" not in lane["message"] and "ada@example.com" not in lane["message"]
    assert [a["key"] for a in health["alerts"]] == ["review_queue"]
    assert health["workers"]["alive"] == 1 and health["workers"]["seen"][0]["worker_id"] == "w1"


def test_the_review_queue_counts_by_reason(api: Api, world: Any) -> None:
    queue = api.get("/health")["review_queue"]
    assert queue == {"count": 1, "by_reason": {world.review.reason_code: 1}}


def test_no_secret_reaches_an_answer(api: Api, world: Any, tokens: dict[str, str]) -> None:
    """Secrets that slipped into stored text (a provider echoing a header, a payload) are
    redacted on the way out; every answer is also checked by the api helper."""
    leaky = f"401 for Bearer {tokens['admin']} with sk_live_abcdef123456 and whsec_abcdef123456"
    Job.objects.filter(pk=world.review.pk).update(last_error=leaky, payload={"note": leaky})
    world.review.attempt_rows.update(message=leaky)
    ProviderState.objects.filter(provider="kit").update(message=leaky)
    for path in (f"/jobs/{world.review.pk}", "/jobs", "/health", f"/customers/{world.review.customer_id}"):
        text = api.call("GET", path, "viewer", expect=200).content.decode()
        assert "sk_live_abcdef123456" not in text and "whsec_abcdef123456" not in text
        assert tokens["admin"] not in text
    job = api.get(f"/jobs/{world.review.pk}")
    assert "[redacted]" in job["last_error"] and "[redacted]" in job["payload"]["note"]
    assert "[redacted]" in job["attempt_history"][0]["message"]
