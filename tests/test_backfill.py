"""Backfill: a new installation, or a long outage, ends in the same state as if nothing had
been missed."""

from __future__ import annotations

import time
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from frontdesk.customers.models import Customer
from frontdesk.intake.models import BackfillState, Event

from . import stripe_events as se
from .conftest import drain, signed_post

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def state_of(email: str, fakes: Any) -> tuple[Any, ...]:
    customer = Customer.objects.get(email=email)
    member = fakes.circle.member(email) or {}
    return (sorted(customer.entitlements.exclude(status="revoked").values_list("name", "status")),
            sorted(member.get("space_ids", ())), sorted((fakes.kit.subscriber(email) or {}).get("tag_ids", ())))


def lifecycle(email: str, t: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    cus, sub = se.unique("cus"), se.unique("sub")
    session = se.checkout_session(email, mode="subscription", customer=cus, subscription=sub,
                                  line_items=[se.line_item("price_community", "prod_community")])
    past_due = se.subscription(cus, "past_due", "price_community", "prod_community", sub_id=sub)
    canceled = se.subscription(cus, "canceled", "price_community", "prod_community", sub_id=sub)
    events = [se.event("checkout.session.completed", session, created=t),
              se.event("customer.subscription.updated", past_due, created=t + 10),
              se.event("customer.subscription.deleted", canceled, created=t + 20)]
    return events, canceled


def test_backfill_after_an_outage_matches_uninterrupted_delivery(client: Any, fakes: Any, rules: Any) -> None:
    t = int(time.time()) - 3600
    steady, _ = lifecycle("steady@example.com", t)
    for event in steady:
        signed_post(client, event)
    drain()

    missed, final = lifecycle("outage@example.com", t)
    signed_post(client, missed[0])  # delivered before the outage
    drain()
    assert state_of("outage@example.com", fakes)[0] == [("community", "active")]
    for event in missed[1:]:  # Stripe kept these; they never reached frontdesk
        fakes.stripe.add_event(event, delivery_success=False)
    fakes.stripe.add_subscription(final)
    fakes.stripe.add_event(missed[0])  # delivered already: the backfill must not redo it

    out = run("backfill", "stripe")
    drain()
    assert "events: done" in out
    assert state_of("outage@example.com", fakes) == state_of("steady@example.com", fakes) == ([], [], [])
    assert Event.objects.filter(event_id=missed[0]["id"]).count() == 1
    run("backfill", "stripe")  # running it again changes nothing
    assert Event.objects.count() == 6


def test_a_new_installation_imports_customers_and_subscriptions(client: Any, fakes: Any, rules: Any) -> None:
    cus = se.unique("cus")
    fakes.stripe.add_customer(se.customer_object(cus, "Existing@Example.com"))
    fakes.stripe.add_subscription(se.subscription(cus, "active", "price_community", "prod_community"))
    out = run("backfill", "stripe")
    drain()
    assert "customers 1" in out and "subscriptions 1" in out
    customer = Customer.objects.get()
    assert (customer.email, customer.stripe_customer_id) == ("existing@example.com", cus)
    assert fakes.circle.member("existing@example.com")["space_ids"] == {101, 102}
    assert fakes.kit.subscriber("existing@example.com")["tag_ids"] == {501, 502}


def test_an_interrupted_backfill_resumes_where_it_stopped(client: Any, fakes: Any, rules: Any) -> None:
    cus = se.unique("cus")
    fakes.stripe.add_customer(se.customer_object(cus, "resume@example.com"))
    fakes.stripe.add_subscription(se.subscription(cus, "active", "price_community", "prod_community"))
    fakes.stripe.fail(400, path="/v1/subscriptions", count=1)
    with pytest.raises(CommandError, match="Run the command again to resume"):
        run("backfill", "stripe")
    assert BackfillState.objects.get().phase == "subscriptions"
    run("backfill", "stripe")
    assert len(fakes.stripe.calls_to("/v1/customers")) == 1  # not fetched again
    assert BackfillState.objects.get().phase == "done"
    drain()
    assert fakes.circle.member("resume@example.com") is not None


def test_backfill_needs_a_stripe_key(settings: Any, rules: Any) -> None:
    settings.STRIPE_API_KEY = ""
    with pytest.raises(CommandError, match="STRIPE_API_KEY"):
        run("backfill", "stripe")
