"""What operators and admins do through the API: the shared actions, their effects and their
audit entries, and the answers to bad input."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from frontdesk.api.models import ApiToken
from frontdesk.audit.models import AuditEntry
from frontdesk.customers.models import Customer, Override
from frontdesk.intake.models import Event
from frontdesk.ledger.models import Job, JobState
from frontdesk.rules.models import RulesVersion

from ..conftest import RULES_FILE, drain
from .conftest import Api

pytestmark = pytest.mark.django_db


def actor(role: str) -> str:
    return ApiToken.objects.get(role=role).actor


def iso(dt: Any) -> str:
    return dt.isoformat().replace("+00:00", "Z")


def test_retry_requeues_audits_and_the_job_then_succeeds(api: Api, world: Any) -> None:
    job = api.post(f"/jobs/{world.review.pk}/retry", {"reason": "fixed the address"})
    assert job["state"] == "queued" and job["id"] == world.review.pk
    entry = AuditEntry.objects.get(action="job_retried")
    assert (entry.actor, entry.target, entry.reason) == (actor("operator"), f"job:{world.review.pk}", "fixed the address")
    assert entry.actor == f"api:test-operator#{ApiToken.objects.get(role='operator').pk}"
    drain()
    assert Job.objects.get(pk=world.review.pk).state == JobState.SUCCEEDED
    again = api.post(f"/jobs/{world.review.pk}/retry", expect=409)
    assert again["error"] == "conflict" and "succeeded" in again["detail"]


def test_retrying_while_a_newer_job_for_the_same_customer_waits_is_409(api: Api, world: Any) -> None:
    ada = Customer.objects.get(email="ada@example.com")
    api.post(f"/customers/{ada.pk}/overrides", {"action": "grant", "entitlement": "course", "reason": "VIP"},
             expect=201)  # queues a new kit.sync for Ada beside the one in review
    assert Job.objects.filter(customer=ada, kind="kit.sync", state=JobState.QUEUED).exists()
    answer = api.post(f"/jobs/{world.review.pk}/retry", expect=409)
    assert "already waiting" in answer["detail"]
    assert Job.objects.get(pk=world.review.pk).state == JobState.NEEDS_REVIEW
    # A bulk retry carries on past it (the waiting job converges the customer) and retries nothing.
    assert api.call("POST", "/jobs/retry", "operator", query={"state": "needs_review"}, expect=200)


def test_retry_takes_no_body_or_an_empty_one(api: Api, world: Any) -> None:
    assert api.call("POST", f"/jobs/{world.review.pk}/retry", "operator", raw="", expect=200).json()["state"] == "queued"
    assert api.post(f"/jobs/{world.review.pk}/cancel", {"reason": "duplicate"})["state"] == "cancelled"
    assert api.post(f"/jobs/{world.review.pk}/retry", {})["state"] == "queued"


def test_cancel_needs_a_reason_and_audits(api: Api, world: Any) -> None:
    url = f"/jobs/{world.review.pk}/cancel"
    assert api.post(url, {}, expect=400)["detail"] == "field 'reason' is required"
    assert "must say why" in api.post(url, {"reason": "   "}, expect=400)["detail"]
    assert api.call("POST", url, "operator", raw="", expect=400).json()["detail"] == "a JSON object body is required"
    job = api.post(url, {"reason": "customer asked"})
    assert (job["state"], job["reason_code"]) == ("cancelled", "cancelled_by_hand")
    entry = AuditEntry.objects.get(action="job_cancelled")
    assert entry.before["state"] == "needs_review" and entry.reason == "customer asked"
    assert "cannot be cancelled" in api.post(url, {"reason": "again"}, expect=409)["detail"]


def test_resolve_marks_a_review_job_handled(api: Api, world: Any) -> None:
    job = api.post(f"/jobs/{world.review.pk}/resolve", {"reason": "tagged by hand in Kit"})
    assert (job["state"], job["reason_code"]) == ("succeeded", "resolved_by_hand")
    assert AuditEntry.objects.get(action="job_resolved").actor == actor("operator")
    done = Job.objects.filter(kind="circle.sync").first()
    assert "only jobs that need review" in api.post(f"/jobs/{done.pk}/resolve", {"reason": "x"}, expect=409)["detail"]
    assert api.post("/jobs/999999/resolve", {"reason": "x"}, expect=404)["error"] == "not_found"


def test_bulk_retry_takes_the_list_filters(api: Api, world: Any) -> None:
    assert "at least one filter" in api.post("/jobs/retry", expect=400)["detail"]
    assert api.call("POST", "/jobs/retry", "operator", query={"state": "nope"}, expect=400)
    assert api.call("POST", "/jobs/retry", "operator", query={"provider": "circle"},
                    expect=200).json() == {"retried": 0}
    body = api.call("POST", "/jobs/retry", "operator", query={"state": "needs_review", "provider": "kit"},
                    body={"reason": "Kit is fixed"}, expect=200).json()
    assert body == {"retried": 1}
    assert Job.objects.get(pk=world.review.pk).state == JobState.QUEUED
    entries = AuditEntry.objects.filter(action="jobs_bulk_retried")
    assert [(e.after, e.reason) for e in entries] == [({"count": 1}, "Kit is fixed"), ({"count": 0}, "")]


def test_replay_queues_processing_once(api: Api, world: Any) -> None:
    job = api.post(f"/events/{world.first['id']}/replay", {"reason": "check"}, expect=202)
    assert (job["kind"], job["state"], job["event_id"]) == ("stripe.process_event", "queued", world.first["id"])
    entry = AuditEntry.objects.get(action="event_replayed")
    assert (entry.target, entry.actor, entry.after) == (f"event:{world.first['id']}", actor("operator"), {"job": job["id"]})
    assert api.post(f"/events/{world.first['id']}/replay", expect=202)["id"] != job["id"]
    assert api.post("/events/evt_missing/replay", expect=404)["error"] == "not_found"
    Event.objects.filter(event_id=world.second["id"]).update(payload="")
    assert "pruned" in api.post(f"/events/{world.second['id']}/replay", expect=409)["detail"]


def test_overrides_grant_revoke_and_remove(api: Api, world: Any) -> None:
    bob = Customer.objects.get(email="bob@example.com")
    until = timezone.now() + timedelta(days=30)
    made = api.post(f"/customers/{bob.pk}/overrides", {"action": "grant", "entitlement": "course",
                                                       "reason": "VIP", "expires_at": iso(until)}, expect=201)
    assert (made["action"], made["entitlement"], made["state"], made["created_by"]) == (
        "grant", "course", "active", actor("operator"))
    assert api.get(f"/customers/{bob.pk}")["access"] == ["community", "course"]
    assert AuditEntry.objects.get(action="override_grant").reason == "VIP"

    revoke = api.post(f"/customers/{bob.pk}/overrides", {"action": "revoke", "entitlement": "community",
                                                         "reason": "abuse report", "expires_at": None}, expect=201)
    detail = api.get(f"/customers/{bob.pk}")
    assert detail["access"] == ["course"]
    assert "payment active but access 'community' revoked by hand" in detail["conflicts"]
    assert [o["id"] for o in detail["overrides"]] == [made["id"], revoke["id"]]

    assert api.call("DELETE", f"/overrides/{revoke['id']}", "operator", expect=400).json()["error"] == "bad_request"
    removed = api.call("DELETE", f"/overrides/{revoke['id']}", "operator", query={"reason": "cleared"},
                       expect=200).json()
    assert (removed["state"], removed["removed_by"]) == ("removed", actor("operator"))
    assert AuditEntry.objects.get(action="override_removed").reason == "cleared"
    assert api.get(f"/customers/{bob.pk}")["access"] == ["community", "course"]
    again = api.call("DELETE", f"/overrides/{revoke['id']}", "operator", body={"reason": "x"}, expect=409).json()
    assert "already removed" in again["detail"]
    assert api.call("DELETE", f"/overrides/{made['id']}", "operator", body={"reason": "done"}, expect=200)
    assert Override.objects.get(pk=made["id"]).removed_at is not None
    assert api.call("DELETE", "/overrides/999999", "operator", body={"reason": "x"}, expect=404)


@pytest.mark.parametrize("body,detail", [
    ({"action": "grant", "entitlement": "nope", "reason": "x"}, "not an entitlement in the current rules"),
    ({"action": "grant", "entitlement": "course", "reason": " "}, "must say why"),
    ({"action": "grant", "entitlement": "course"}, "'reason' is required"),
    ({"action": "give", "entitlement": "course", "reason": "x"}, "one of: grant, revoke"),
    ({"entitlement": "course", "reason": "x"}, "'action' is required"),
    ({"action": "grant", "entitlement": 5, "reason": "x"}, "must be a string"),
    ({"action": "grant", "entitlement": "course", "reason": "x", "expires_at": "2020-01-01T00:00:00Z"}, "in the past"),
    ({"action": "grant", "entitlement": "course", "reason": "x", "expires_at": "tomorrow"}, "date-time"),
    ({"action": "grant", "entitlement": "course", "reason": "x", "expires_at": 1790000000}, "date-time string"),
    ({"action": "grant", "entitlement": "course", "reason": "x\x00"}, "NUL"),
    ({"action": "grant", "entitlement": "course", "reason": "\ud800"}, "not valid text"),
    (["grant"], "must be a JSON object"),
    ("grant", "must be a JSON object"),
])
def test_bad_override_input_is_400(api: Api, world: Any, body: Any, detail: str) -> None:
    bob = Customer.objects.get(email="bob@example.com")
    answer = api.post(f"/customers/{bob.pk}/overrides", body, expect=400)
    assert answer["error"] == "bad_request" and detail in answer["detail"], answer
    assert not Override.objects.exists()


def test_bad_json_is_400_with_the_reason(api: Api, world: Any) -> None:
    for raw in ("{", "{'reason': 'x'}", "[1,", b"\xff\xfe", "NaN-ish", "1e99999" * 2):
        answer = api.call("POST", f"/jobs/{world.review.pk}/cancel", "operator", raw=raw, expect=400).json()
        assert answer["error"] in ("invalid_json", "bad_request") and answer["detail"], raw
    assert api.call("POST", f"/jobs/{world.review.pk}/cancel", "operator", raw="[" * 100000,
                    expect=400).json()["error"] == "invalid_json"
    assert Job.objects.get(pk=world.review.pk).state == JobState.NEEDS_REVIEW
    assert not AuditEntry.objects.filter(action="job_cancelled").exists()


NEW_RULES = RULES_FILE.read_text().replace("spaces: [103]", "spaces: [103, 104]").replace(
    "mappings:\n", "mappings:\n  - price: price_extra\n    grant: [course]\n")


def test_rules_preview_says_what_would_change_and_changes_nothing(api: Api, world: Any) -> None:
    assert api.post("/rules/preview", {"content": NEW_RULES}, role="operator", expect=403)["detail"] == \
        "needs the admin role"
    preview = api.post("/rules/preview", {"content": NEW_RULES}, role="admin")
    assert preview["current_version"] == 1
    assert "~ course.circle.spaces: [103] → [103, 104]" in preview["semantic_diff"]
    assert "+ mapping price price_extra → ['course']" in preview["semantic_diff"]
    assert any(line.startswith("+") and "104" in line for line in preview["text_diff"])
    assert preview["affected_count"] == 0 and preview["truncated"] is False  # nobody holds course
    revoke_all = RULES_FILE.read_text().replace("  - price: price_community\n    grant: [community]\n", "")
    preview = api.post("/rules/preview", {"content": revoke_all}, role="admin")
    assert preview["affected_count"] == 2
    assert {(a["email"], tuple(a["loses"])) for a in preview["affected"]} == {
        ("ada@example.com", ("community",)), ("bob@example.com", ("community",))}
    assert RulesVersion.objects.count() == 1 and not AuditEntry.objects.filter(action="rules_loaded").exists()


def test_invalid_rules_are_400_with_line_numbers(api: Api, rules: Any) -> None:
    for url in ("/rules/preview", "/rules"):
        answer = api.post(url, {"content": "entitlements:\n  Bad Name:\n    circle: {}\n"}, role="admin", expect=400)
        assert answer["error"] == "invalid_rules"
        assert answer["problems"][0]["line"] == 2 and "entitlement name" in answer["problems"][0]["message"]
        answer = api.post(url, {"content": "entitlements: [\n"}, role="admin", expect=400)
        assert "not valid YAML" in answer["problems"][0]["message"]
        assert api.post(url, {"content": 42}, role="admin", expect=400)["detail"] == "field 'content' must be a string"
    assert RulesVersion.objects.count() == 1


def test_loading_rules_stores_applies_and_audits(api: Api, world: Any) -> None:
    revoke_all = RULES_FILE.read_text().replace("  - price: price_community\n    grant: [community]\n", "")
    loaded = api.post("/rules", {"content": revoke_all, "source": "git:abc123"}, role="admin", expect=201)
    assert loaded["created"] is True and loaded["changed_customers"] == 2
    assert (loaded["version"]["number"], loaded["version"]["source"], loaded["version"]["loaded_by"]) == (
        2, "git:abc123", actor("admin"))
    assert api.get("/customers", q="ada")["items"][0]["access"] == []
    entry = AuditEntry.objects.get(action="rules_loaded")
    assert entry.after["version"] == 2 and entry.before == {"version": 1} and entry.actor == actor("admin")
    same = api.post("/rules", {"content": revoke_all}, role="admin", expect=200)
    assert (same["created"], same["changed_customers"], same["version"]["number"]) == (False, 0, 2)
    assert api.get("/rules/current")["number"] == 2
    assert api.post("/rules", {"content": revoke_all}, role="operator", expect=403)["error"] == "forbidden"


def test_a_too_large_body_is_413(api: Api, world: Any, settings: Any) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    answer = api.post("/rules/preview", {"content": "x" * 5000}, role="admin", expect=413)
    assert answer["error"] == "too_large"
