"""From a signed Stripe event to Circle and Kit, through the ledger, over real HTTP to the fakes."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from frontdesk.customers.models import Customer, Entitlement, ProviderAccount
from frontdesk.intake.models import Event
from frontdesk.ledger.models import Attempt, Job, JobState, ProviderState

from . import stripe_events as se
from .conftest import drain, signed_post

pytestmark = pytest.mark.django_db
COMMUNITY = {"space_ids": {101, 102}, "space_group_ids": {201}, "member_tag_ids": {401}, "access_group_ids": {301}}


def buy(client: Any, email: str, price: str = "price_community", *, embed: bool = True,
        fakes: Any = None) -> dict[str, Any]:
    items = [se.line_item(price, "prod_community")]
    session = se.checkout_session(email, line_items=items if embed else None, customer=se.unique("cus"))
    if not embed:
        fakes.stripe.add_checkout_session({k: v for k, v in session.items() if k != "line_items"}, items)
    payload = se.event("checkout.session.completed", session)
    assert signed_post(client, payload).status_code == 200
    return payload


def changing_calls(fake: Any) -> list[Any]:
    return [c for c in fake.calls if c.changed]


def test_a_paid_checkout_reaches_circle_and_kit_exactly_once(client: Any, fakes: Any, rules: Any) -> None:
    payload = buy(client, "Ada@Example.com")
    drain()

    creates = fakes.circle.calls_to("/api/admin/v2/community_members", "POST")
    assert len(creates) == 1
    assert creates[0].body["email"] == "ada@example.com"
    assert set(creates[0].body["space_ids"]) == {101, 102}
    assert creates[0].body["member_tag_ids"] == [401]
    assert creates[0].auth_scheme == "Token"
    member = fakes.circle.member("ada@example.com")
    assert {k: member[k] for k in COMMUNITY} == COMMUNITY
    subscriber = fakes.kit.subscriber("ada@example.com")
    assert subscriber["tag_ids"] == {501, 502}
    assert subscriber["sequence_ids"] == {601}
    assert subscriber["fields"]["plan"] == "community"

    customer = Customer.objects.get()
    assert customer.email == "ada@example.com"
    ent = Entitlement.objects.get(customer=customer)
    assert (ent.name, ent.source_type, ent.rules_version.number) == ("community", "checkout_session", 1)
    assert Event.objects.get(event_id=payload["id"]).status == "processed"
    assert set(Job.objects.values_list("kind", "state")) == {
        ("stripe.process_event", "succeeded"), ("circle.sync", "succeeded"), ("kit.sync", "succeeded")}
    # Every job carries the event's correlation id.
    assert set(Job.objects.values_list("correlation_id", flat=True)) == {Event.objects.get().correlation_id}


def test_line_items_come_from_the_stripe_api_when_the_event_lacks_them(client: Any, fakes: Any, rules: Any) -> None:
    buy(client, "grace@example.com", embed=False, fakes=fakes)
    drain()
    assert len(fakes.stripe.calls_to("/v1/checkout/sessions/")) == 1
    assert fakes.stripe.calls[0].auth_scheme == "Bearer"
    assert fakes.circle.member("grace@example.com")["space_ids"] == {101, 102}


def test_an_unpaid_async_checkout_grants_nothing_until_it_succeeds(client: Any, fakes: Any, rules: Any) -> None:
    session = se.checkout_session("late@example.com", payment_status="unpaid",
                                  line_items=[se.line_item("price_community", "prod_community")])
    signed_post(client, se.event("checkout.session.completed", session))
    drain()
    assert not Entitlement.objects.exists()
    assert fakes.circle.calls == []
    session["payment_status"] = "paid"
    signed_post(client, se.event("checkout.session.async_payment_succeeded", session))
    drain()
    assert fakes.circle.member("late@example.com")["space_ids"] == {101, 102}


def test_a_subscription_checkout_and_its_invoice_converge_on_one_entitlement(client: Any, fakes: Any, rules: Any) -> None:
    sub, cus = se.unique("sub"), se.unique("cus")
    session = se.checkout_session("sub@example.com", mode="subscription", subscription=sub, customer=cus,
                                  line_items=[se.line_item("price_community", "prod_community")])
    signed_post(client, se.event("checkout.session.completed", session))
    inv = se.invoice("sub@example.com", customer=cus, subscription=sub, price="price_community", product="prod_community")
    signed_post(client, se.event("invoice.paid", inv))
    drain()
    ent = Entitlement.objects.get()
    assert (ent.source_type, ent.source_id) == ("subscription", sub)
    assert len(fakes.circle.calls_to("/api/admin/v2/community_members", "POST")) == 1
    assert Customer.objects.get().stripe_customer_id == cus


def test_an_invoice_alone_grants_by_product(client: Any, fakes: Any, rules: Any) -> None:
    inv = se.invoice("course@example.com", customer=se.unique("cus"), subscription=se.unique("sub"),
                     price="price_other", product="prod_course")
    signed_post(client, se.event("invoice.paid", inv))
    drain()
    assert fakes.circle.member("course@example.com")["space_ids"] == {103}
    assert fakes.kit.subscriber("course@example.com")["tag_ids"] == {503}


def test_twenty_events_delivered_twice_cause_no_duplicate_changes(client: Any, fakes: Any, rules: Any) -> None:
    payloads = [buy(client, f"twice{i}@example.com") for i in range(20)]
    for p in payloads:
        assert signed_post(client, p).json()["status"] == "duplicate"
    drain()
    per_target = Counter((c.method, c.path, str(sorted((c.body or {}).items())) if isinstance(c.body, dict) else "")
                         for c in changing_calls(fakes.circle) + changing_calls(fakes.kit))
    assert per_target and max(per_target.values()) == 1
    assert len(fakes.circle.calls_to("/api/admin/v2/community_members", "POST")) == 20
    # Running every sync again changes nothing anywhere.
    before = len(changing_calls(fakes.circle)) + len(changing_calls(fakes.kit))
    from frontdesk.ledger.enqueue import request_sync
    for customer in Customer.objects.all():
        for provider in ("circle", "kit"):
            request_sync(provider, customer.pk, correlation_id="again", cause="again")
    drain()
    assert len(changing_calls(fakes.circle)) + len(changing_calls(fakes.kit)) == before


def test_circle_500s_are_retried_with_backoff_until_it_recovers(client: Any, fakes: Any, rules: Any) -> None:
    fakes.circle.fail(500, seconds=1.5, path="/api/admin/v2/community_members")
    buy(client, "patient@example.com")
    drain(timeout=30)
    job = Job.objects.get(kind="circle.sync")
    assert job.state == JobState.SUCCEEDED
    assert job.attempts >= 2
    outcomes = list(Attempt.objects.filter(job=job).values_list("outcome", "http_status"))
    assert outcomes[0] == ("transient", 500)
    assert outcomes[-1][0] == "succeeded"
    assert not Job.objects.filter(state=JobState.NEEDS_REVIEW).exists()
    assert fakes.circle.member("patient@example.com")["space_ids"] == {101, 102}
    assert ProviderState.objects.get(provider="circle").status == "ok"


def test_an_open_circuit_holds_jobs_without_spending_attempts(client: Any, fakes: Any, rules: Any, settings: Any) -> None:
    settings.CIRCUIT_THRESHOLD = 1
    settings.CIRCUIT_COOLDOWN_SECONDS = 60
    fakes.circle.fail(503, count=1)
    buy(client, "one@example.com")
    buy(client, "two@example.com")
    from .conftest import Worker
    worker = Worker(concurrency=1, worker_id="w")
    for _ in range(12):
        worker.run_one()
    state = ProviderState.objects.get(provider="circle")
    assert state.status == "circuit_open"
    circle_jobs = Job.objects.filter(kind="circle.sync")
    assert sum(circle_jobs.values_list("attempts", flat=True)) == 1  # only the failed one tried
    assert Job.objects.filter(kind="kit.sync", state="succeeded").count() == 2  # other lanes carry on
    # The cooldown ends; one probe succeeds and the lane resumes by itself.
    ProviderState.objects.filter(provider="circle").update(blocked_until=state.updated_at)
    drain()
    assert set(circle_jobs.values_list("state", flat=True)) == {"succeeded"}
    assert ProviderState.objects.get(provider="circle").status == "ok"


def test_kit_429_makes_the_worker_back_off_and_succeed(client: Any, fakes: Any, rules: Any) -> None:
    fakes.kit.fail(429, count=1, path="/v4/subscribers")
    buy(client, "busy@example.com")
    drain(timeout=30)
    job = Job.objects.get(kind="kit.sync")
    assert job.state == JobState.SUCCEEDED
    assert list(Attempt.objects.filter(job=job).values_list("outcome", "http_status", "reason_code"))[0] == (
        "transient", 429, "rate_limited")
    assert fakes.kit.subscriber("busy@example.com")["tag_ids"] == {501, 502}


def test_kit_422_sends_that_job_to_review_and_others_carry_on(client: Any, fakes: Any, rules: Any) -> None:
    # Kit's documented answer to an address it refuses (kit.md §2), for this one subscriber.
    fakes.kit.fail(422, path="/v4/subscribers", method="POST", count=1,
                   body={"errors": ["Email address is invalid"]})
    buy(client, "someone@example.net")
    drain()
    buy(client, "fine@example.com")
    drain()
    review = Job.objects.get(state=JobState.NEEDS_REVIEW)
    assert (review.kind, review.reason_code) == ("kit.sync", "kit_invalid_email")
    assert "example.net" not in review.last_error  # e-mails are redacted
    assert Job.objects.filter(state=JobState.SUCCEEDED).count() == 5
    assert fakes.circle.member("someone@example.net") is not None  # Circle's job was unaffected
    assert fakes.kit.subscriber("fine@example.com")["tag_ids"] == {501, 502}


def test_a_bad_token_pauses_the_provider_instead_of_filling_review(client: Any, fakes: Any, rules: Any, settings: Any) -> None:
    settings.CIRCLE_API_TOKEN = "wrong-token"
    buy(client, "a@example.com")
    buy(client, "b@example.com")
    from .conftest import Worker
    worker = Worker(concurrency=1, worker_id="w")
    for _ in range(10):
        worker.run_one()
    state = ProviderState.objects.get(provider="circle")
    assert (state.status, state.reason_code) == ("paused", "circle_auth_failed")
    assert not Job.objects.filter(state=JobState.NEEDS_REVIEW).exists()
    assert set(Job.objects.filter(kind="circle.sync").values_list("attempts", flat=True)) == {0}
    settings.CIRCLE_API_TOKEN = "circle-test-token"  # the operator fixes the token
    drain(timeout=10)
    assert fakes.circle.member("b@example.com") is not None


def test_a_circle_target_missing_from_the_community_goes_to_review(client: Any, fakes: Any, rules: Any) -> None:
    fakes.circle.access_groups.pop(301)
    buy(client, "gap@example.com")
    drain()
    job = Job.objects.get(kind="circle.sync")
    assert (job.state, job.reason_code) == ("needs_review", "circle_missing_access_group")
    # What succeeded before the failure is recorded, so a retry resends nothing.
    assert ProviderAccount.objects.get(provider="circle").applied["spaces"] == [101, 102]


def test_rejected_webhooks_cause_no_provider_call(client: Any, fakes: Any, rules: Any) -> None:
    payload = se.event("checkout.session.completed", se.checkout_session(
        "x@example.com", line_items=[se.line_item("price_community", "p")]))
    signed_post(client, payload, secrets=["whsec_wrong"])
    signed_post(client, b"not json")
    drain()
    assert not Job.objects.exists()
    assert fakes.circle.calls == [] and fakes.kit.calls == [] and fakes.stripe.calls == []


def test_two_events_for_a_new_guest_create_one_customer(client: Any, fakes: Any, rules: Any) -> None:
    for price in ("price_community", "price_community"):
        session = se.checkout_session("guest@example.com", line_items=[se.line_item(price, "prod_course")])
        signed_post(client, se.event("checkout.session.completed", session))
    drain()
    assert Customer.objects.count() == 1
    assert sorted(Entitlement.objects.values_list("name", flat=True)) == ["community", "community", "course", "course"]
    assert len(fakes.circle.calls_to("/api/admin/v2/community_members", "POST")) == 1


def test_an_existing_kit_subscriber_gets_the_fields_and_tags(client: Any, fakes: Any, rules: Any) -> None:
    fakes.kit.add_subscriber("known@example.com", first_name="Known", fields={"plan": "free"})
    buy(client, "known@example.com")
    drain()
    subscriber = fakes.kit.subscriber("known@example.com")
    assert subscriber["fields"]["plan"] == "community"
    assert subscriber["tag_ids"] == {501, 502}
    assert len([s for s in fakes.kit.state()["subscribers"] if s["email_address"] == "known@example.com"]) == 1
