"""Order independence: any delivery order, with duplicates, ends where in-order delivery ends."""

from __future__ import annotations

import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from frontdesk.customers.models import Customer

from . import stripe_events as se
from .conftest import drain, signed_post

pytestmark = pytest.mark.django_db

STATUSES = ["active", "trialing", "past_due", "unpaid", "canceled", "incomplete", "paused"]
PLANS = [("price_community", "prod_community"), ("price_other", "prod_course")]


@st.composite
def lifecycle(draw: Any) -> list[tuple[str, str, int, bool]]:
    """A subscription's successive states: (status, plan index, seconds apart, cancel at period end)."""
    steps = draw(st.lists(st.tuples(st.sampled_from(STATUSES), st.integers(0, 1), st.integers(0, 2), st.booleans()),
                          min_size=1, max_size=6))
    return steps


def events_for(steps: list[tuple[str, int, int, bool]], email: str, t: int) -> list[dict[str, Any]]:
    cus, sub = se.unique("cus"), se.unique("sub")
    session = se.checkout_session(email, mode="subscription", customer=cus, subscription=sub,
                                  line_items=[se.line_item(*PLANS[steps[0][1]])])
    events = [se.event("checkout.session.completed", session, created=t)]
    for i, (status, plan, gap, cancel_at_end) in enumerate(steps):
        t += gap  # 0 s apart happens: Stripe's `created` has 1-second resolution
        kind = "customer.subscription.created" if i == 0 else (
            "customer.subscription.deleted" if status == "canceled" else "customer.subscription.updated")
        obj = se.subscription(cus, status, *PLANS[plan], sub_id=sub, cancel_at_period_end=cancel_at_end,
                              period_end=t + 29 * 86400)
        events.append(se.event(kind, obj, created=t))
    return events


def outcome(email: str, fakes: Any) -> tuple[Any, ...]:
    customer = Customer.objects.get(email=email)
    # Revoked rows are history (a plan held and left in order is never held when the newer
    # state arrives first); what a customer holds now must match.
    ents = sorted(customer.entitlements.exclude(status="revoked").values_list("name", "status", "expires_at"))
    member = fakes.circle.member(email) or {}
    subscriber = fakes.kit.subscriber(email) or {}
    return (ents, sorted(member.get("space_ids", ())), sorted(member.get("member_tag_ids", ())),
            sorted(member.get("access_group_ids", ())), sorted(subscriber.get("tag_ids", ())))


@hsettings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(steps=lifecycle(), data=st.data())
def test_any_order_with_duplicates_ends_like_in_order_delivery(client: Any, fakes: Any, rules: Any, settings: Any,
                                                               steps: list[Any], data: Any) -> None:
    settings.STRIPE_API_KEY = ""  # order by event versions alone, not by re-fetching
    a, b = f"{se.unique('inorder')}@example.com", f"{se.unique('shuffled')}@example.com"
    t0 = int(time.time()) - 3600  # the same clock for both runs: grace periods count from it
    for event in events_for(steps, a, t0):
        signed_post(client, event)
    drain()

    events = events_for(steps, b, t0)
    shuffled = data.draw(st.permutations(events), label="delivery order")
    repeats = data.draw(st.lists(st.sampled_from(events), max_size=4), label="duplicates")
    for event in [*shuffled, *repeats]:
        signed_post(client, event)
        # Sometimes let the workers catch up mid-way, so processing interleaves with delivery.
        if data.draw(st.booleans(), label="drain now"):
            drain()
    drain()
    assert outcome(b, fakes) == outcome(a, fakes)
