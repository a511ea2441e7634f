"""The full Stripe lifecycle, end to end through the fakes (docs/access-policy.md)."""

from __future__ import annotations

import time
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from frontdesk.customers.models import Customer, Entitlement, EntitlementChange
from frontdesk.customers.recompute import conflicts, due_for_expiry, recompute

from . import stripe_events as se
from .conftest import drain, signed_post

pytestmark = pytest.mark.django_db
SPACES = {101, 102}


@pytest.fixture
def person(client: Any, fakes: Any, rules: Any) -> dict[str, Any]:
    """A customer who subscribed through Checkout (so frontdesk knows their e-mail)."""
    cus, sub = se.unique("cus"), se.unique("sub")
    session = se.checkout_session("life@example.com", mode="subscription", customer=cus, subscription=sub,
                                  line_items=[se.line_item("price_community", "prod_community")])
    start = int(time.time()) - 3600
    signed_post(client, se.event("checkout.session.completed", session, created=start))
    drain()
    return {"cus": cus, "sub": sub, "client": client, "fakes": fakes, "t": start + 100}


def send(p: dict[str, Any], event_type: str, obj: dict[str, Any], dt: int = 10) -> None:
    p["t"] += dt
    assert signed_post(p["client"], se.event(event_type, obj, created=p["t"])).status_code == 200
    drain()


def sub_event(p: dict[str, Any], status: str, event_type: str = "customer.subscription.updated", dt: int = 10,
              **kw: Any) -> None:
    send(p, event_type, se.subscription(p["cus"], status, kw.pop("price", "price_community"),
                                        kw.pop("product", "prod_community"), sub_id=p["sub"], **kw), dt)


def access(email: str = "life@example.com") -> set[str]:
    customer = Customer.objects.get(email=email)
    return set(customer.entitlements.filter(status="active").values_list("name", flat=True))


def circle_spaces(p: dict[str, Any]) -> set[int]:
    member = p["fakes"].circle.member("life@example.com")
    return member["space_ids"] if member else set()


@pytest.mark.parametrize(("status", "granted"), [
    ("active", True), ("trialing", True), ("incomplete", False), ("incomplete_expired", False),
    ("unpaid", False), ("paused", False), ("canceled", False),
])
def test_subscription_status_decides_access(person: dict[str, Any], status: str, granted: bool) -> None:
    sub_event(person, status)
    assert (access() == {"community"}) is granted
    assert (circle_spaces(person) == SPACES) is granted


def test_past_due_keeps_access_for_the_grace_period_then_suspends(person: dict[str, Any]) -> None:
    sub_event(person, "past_due")
    ent = Entitlement.objects.get(status="active")
    assert ent.expires_at is not None and "grace period" in ent.reason
    assert circle_spaces(person) == SPACES
    later = timezone.now() + timedelta(days=3, minutes=1)
    assert Customer.objects.get().pk in due_for_expiry(later)
    recompute(Customer.objects.get().pk, "expiry", now=later)
    drain()
    assert Entitlement.objects.get().status == "suspended"
    assert circle_spaces(person) == set()
    sub_event(person, "active")  # the card was updated
    assert circle_spaces(person) == SPACES


def test_cancel_at_period_end_revokes_at_period_end_not_before(person: dict[str, Any]) -> None:
    end = int((timezone.now() + timedelta(days=10)).timestamp())
    sub_event(person, "active", cancel_at_period_end=True, period_end=end)
    ent = Entitlement.objects.get()
    assert ent.status == "active" and int(ent.expires_at.timestamp()) == end
    assert circle_spaces(person) == SPACES
    recompute(Customer.objects.get().pk, "expiry", now=timezone.now() + timedelta(days=11))
    drain()
    assert Entitlement.objects.get().status == "revoked"
    assert circle_spaces(person) == set()
    assert person["fakes"].kit.subscriber("life@example.com")["tag_ids"] == set()


def test_deleted_subscription_revokes_everywhere(person: dict[str, Any]) -> None:
    sub_event(person, "canceled", "customer.subscription.deleted")
    assert access() == set()
    assert circle_spaces(person) == set()
    assert person["fakes"].circle.member("life@example.com")["member_tag_ids"] == set()
    assert person["fakes"].kit.subscriber("life@example.com")["tag_ids"] == set()


def test_an_upgrade_swaps_entitlements_without_a_gap_or_old_tags(person: dict[str, Any]) -> None:
    sub_event(person, "active", price="price_other", product="prod_course")
    assert access() == {"course"}
    assert circle_spaces(person) == {103}
    assert person["fakes"].kit.subscriber("life@example.com")["tag_ids"] == {503}
    # No gap: the new space was added before the old ones were removed.
    calls = [(c.method, c.path, (c.body or {}).get("space_id") or c.query.get("space_id", [None])[0])
             for c in person["fakes"].circle.calls if c.changed and "space_members" in c.path]
    added = next(i for i, c in enumerate(calls) if c[0] == "POST" and c[2] in (103, "103"))
    removed = next(i for i, c in enumerate(calls) if c[0] == "DELETE")
    assert added < removed


def test_a_stale_event_does_not_undo_a_newer_one(person: dict[str, Any]) -> None:
    sub_event(person, "canceled", "customer.subscription.deleted", dt=100)
    send(person, "customer.subscription.updated",
         se.subscription(person["cus"], "active", "price_community", "prod_community", sub_id=person["sub"]), dt=-50)
    assert access() == set()


def test_invoice_payment_failed_notifies_support_once(person: dict[str, Any], settings: Any) -> None:
    from frontdesk.fakes.slack import FakeSlack
    from frontdesk.fakes.smtp import FakeSMTP

    with FakeSlack().start() as slack, FakeSMTP().start() as smtp:
        settings.SUPPORT = {"slack_url": slack.webhook_url, "email_to": ["help@example.com"]}
        settings.ALERTS = {**settings.ALERTS, "smtp_url": f"smtp://{smtp.host}:{smtp.port}"}
        inv = se.invoice("life@example.com", customer=person["cus"], subscription=person["sub"],
                         price="price_community", product="prod_community")
        inv["status"] = "open"
        for _ in range(3):  # three deliveries, as distinct Stripe events, of the same failure
            signed_post(person["client"], se.event("invoice.payment_failed", inv))
        drain()
        assert len(slack.messages) == 1
        assert "Payment failed for customer" in slack.messages[0]["text"]
        assert inv["id"] in slack.messages[0]["text"]
        assert len(smtp.messages) == 1 and smtp.messages[0].rcpt_tos == ["help@example.com"]
    assert access() == {"community"}  # a failed payment alone does not revoke


def test_full_refund_revokes_a_one_off_purchase_partial_does_not(client: Any, fakes: Any, rules: Any) -> None:
    session = se.checkout_session("buyer@example.com", line_items=[se.line_item("price_community", "prod_c")])
    session["payment_intent"] = pi = se.unique("pi")
    signed_post(client, se.event("checkout.session.completed", session))
    drain()
    signed_post(client, se.event("charge.refunded", se.charge(pi, refunded_amount=1000)))
    drain()
    assert access("buyer@example.com") == {"community"}
    signed_post(client, se.event("charge.refunded", se.charge(pi, refunded_amount=4900)))
    drain()
    assert access("buyer@example.com") == set()
    assert fakes.circle.member("buyer@example.com")["space_ids"] == set()


def test_a_refund_arriving_before_the_purchase_still_revokes(client: Any, fakes: Any, rules: Any) -> None:
    pi = se.unique("pi")
    signed_post(client, se.event("charge.refunded", se.charge(pi, refunded_amount=4900)))
    session = se.checkout_session("early@example.com", line_items=[se.line_item("price_community", "prod_c")])
    session["payment_intent"] = pi
    signed_post(client, se.event("checkout.session.completed", session))
    drain()
    assert access("early@example.com") == set()
    assert fakes.circle.calls_to("/api/admin/v2/community_members", "POST") == []


@pytest.mark.parametrize(("policy", "kept"), [("revoke", False), ("flag", True)])
def test_a_dispute_follows_the_policy(client: Any, fakes: Any, rules: Any, policy: str, kept: bool) -> None:
    from frontdesk.rules.loading import load_text
    load_text(rules.content.replace("dispute: revoke", f"dispute: {policy}"), "policy.yaml")
    session = se.checkout_session("dispute@example.com", line_items=[se.line_item("price_community", "prod_c")])
    session["payment_intent"] = pi = se.unique("pi")
    signed_post(client, se.event("checkout.session.completed", session))
    drain()
    signed_post(client, se.event("charge.dispute.created", se.dispute(pi, se.unique("ch"))))
    drain()
    customer = Customer.objects.get(email="dispute@example.com")
    assert (access("dispute@example.com") == {"community"}) is kept
    if kept:
        assert any("disputed" in c for c in conflicts(customer))
    else:
        assert Entitlement.objects.get().status == "suspended"


def test_an_email_change_moves_the_person_without_duplicates(person: dict[str, Any]) -> None:
    send(person, "customer.updated", se.customer_object(person["cus"], "New.Address@Example.com"))
    customer = Customer.objects.get()
    assert customer.email == "new.address@example.com"
    kit = person["fakes"].kit
    assert kit.subscriber("new.address@example.com") is not None
    assert kit.subscriber("life@example.com") is None
    assert len(kit.state()["subscribers"]) == 1
    assert len(person["fakes"].circle.state()["members"]) == 1  # the same Circle member


def test_stripe_entitlement_features_grant_directly(client: Any, fakes: Any, rules: Any) -> None:
    cus = se.unique("cus")
    session = se.checkout_session("feature@example.com", mode="subscription", customer=cus,
                                  subscription=se.unique("sub"), line_items=[se.line_item("price_none", "prod_none")])
    signed_post(client, se.event("checkout.session.completed", session))
    signed_post(client, se.event("entitlements.active_entitlement_summary.updated",
                                 se.entitlement_summary(cus, ["community_feature"])))
    drain()
    assert access("feature@example.com") == {"community"}
    signed_post(client, se.event("entitlements.active_entitlement_summary.updated",
                                 se.entitlement_summary(cus, []), created=int(timezone.now().timestamp()) + 5))
    drain()
    assert access("feature@example.com") == set()


def test_a_fixed_duration_purchase_expires(client: Any, fakes: Any, rules: Any) -> None:
    session = se.checkout_session("thirty@example.com", line_items=[se.line_item("price_course_30d", "prod_x")])
    session["created"] = int(timezone.now().timestamp())
    signed_post(client, se.event("checkout.session.completed", session))
    drain()
    ent = Entitlement.objects.get()
    assert ent.status == "active" and ent.expires_at is not None
    recompute(ent.customer_id, "expiry", now=timezone.now() + timedelta(days=31))
    assert Entitlement.objects.get().status == "revoked"


def test_an_async_payment_failure_grants_nothing(client: Any, fakes: Any, rules: Any) -> None:
    session = se.checkout_session("async@example.com", payment_status="unpaid",
                                  line_items=[se.line_item("price_community", "prod_c")])
    signed_post(client, se.event("checkout.session.completed", session))
    signed_post(client, se.event("checkout.session.async_payment_failed", session))
    drain()
    assert not Entitlement.objects.filter(status="active").exists()
    assert fakes.circle.calls == []


# --- manual overrides ----------------------------------------------------------------------

def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_an_override_outlives_a_payment_failure_and_is_flagged(person: dict[str, Any]) -> None:
    run("access", "grant", "life@example.com", "community", "--reason", "VIP while the card is fixed", "--by", "sam")
    sub_event(person, "unpaid")
    assert access() == {"community"}
    assert circle_spaces(person) == SPACES
    assert conflicts(Customer.objects.get()) == ["access 'community' granted by hand while the payment failed"]
    text = run("explain", "life@example.com")
    assert "granted by hand by sam: VIP while the card is fixed" in text
    assert "! access 'community' granted by hand while the payment failed" in text


def test_an_override_that_expires_is_undone(person: dict[str, Any]) -> None:
    sub_event(person, "canceled", "customer.subscription.deleted")
    until = (timezone.now() + timedelta(days=7)).strftime("%Y-%m-%dT%H:%M")
    run("access", "grant", "life@example.com", "community", "--reason", "goodwill week", "--expires", until)
    drain()
    assert circle_spaces(person) == SPACES
    recompute(Customer.objects.get().pk, "expiry", now=timezone.now() + timedelta(days=8))
    drain()
    assert access() == set()
    assert circle_spaces(person) == set()


def test_a_revoke_override_beats_an_active_payment_and_can_be_removed(person: dict[str, Any]) -> None:
    out = run("access", "revoke", "life@example.com", "community", "--reason", "abuse report")
    drain()
    assert access() == set()
    assert conflicts(Customer.objects.get()) == ["payment active but access 'community' revoked by hand"]
    override_id = out.split("#")[1].split(":")[0]
    run("access", "remove", override_id, "--reason", "cleared")
    drain()
    assert access() == {"community"}
    assert circle_spaces(person) == SPACES


def test_overrides_need_a_known_entitlement_and_a_reason(person: dict[str, Any]) -> None:
    with pytest.raises(CommandError, match="not an entitlement"):
        run("access", "grant", "life@example.com", "gold", "--reason", "x")
    with pytest.raises(CommandError, match="reason is required"):
        run("access", "grant", "life@example.com", "community", "--reason", " ")
    with pytest.raises(CommandError, match="no customer"):
        run("access", "grant", "nobody@example.com", "community", "--reason", "x")


def test_every_change_is_in_the_append_only_history(person: dict[str, Any]) -> None:
    sub_event(person, "canceled", "customer.subscription.deleted")
    history = list(EntitlementChange.objects.values_list("before", "after"))
    assert history == [("", "active"), ("active", "revoked")]
    first = EntitlementChange.objects.first()
    assert first.cause.startswith("event:evt_") and first.rules_version == 1
    with pytest.raises(ValueError, match="append-only"):
        first.save()
    text = run("explain", "life@example.com")
    assert "active →" in text and "revoked" in text
