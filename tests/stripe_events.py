"""Stripe events for tests, built from Stripe's real OpenAPI fixtures in ../shared/fixtures.

The fixtures hold objects, not events (see their README): each builder wraps an object in the
fixture event envelope and sets every value the tests rely on (ids, e-mails, prices, status),
because the fixtures' own values are placeholders.
"""

from __future__ import annotations

import copy
import itertools
import json
import time
from functools import cache
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "stripe" / "openapi-fixtures3"
_counter = itertools.count(1)


@cache
def _fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def fixture(name: str) -> dict[str, Any]:
    return copy.deepcopy(_fixture(name))


def unique(prefix: str) -> str:
    return f"{prefix}_t{int(time.time() * 1000) % 10**9}{next(_counter):06d}"


def event(event_type: str, obj: dict[str, Any], *, event_id: str | None = None,
          created: int | None = None) -> dict[str, Any]:
    envelope = fixture("event")
    envelope.update(id=event_id or unique("evt"), type=event_type, livemode=False,
                    created=int(time.time()) if created is None else created)
    envelope["data"] = {"object": obj}
    return envelope


def line_item(price: str, product: str, lookup_key: str | None = None) -> dict[str, Any]:
    item = fixture("checkout_session_line_item")
    item["id"] = unique("li")
    item["price"].update(id=price, product=product, lookup_key=lookup_key)
    return item


def checkout_session(email: str, *, mode: str = "payment", payment_status: str = "paid",
                     customer: str | None = None, subscription: str | None = None,
                     line_items: list[dict[str, Any]] | None = None, name: str = "Test Person") -> dict[str, Any]:
    session = fixture("checkout_session")
    session.update(id=unique("cs_test"), mode=mode, status="complete", payment_status=payment_status,
                   customer=customer, subscription=subscription, livemode=False)
    session["customer_details"] = {**(session.get("customer_details") or {}), "email": email, "name": name}
    if line_items is not None:  # as Stripe renders it with expand[]=line_items
        session["line_items"] = {"object": "list", "data": line_items, "has_more": False,
                                 "url": f"/v1/checkout/sessions/{session['id']}/line_items"}
    return session


def invoice(email: str, *, customer: str, subscription: str, price: str, product: str) -> dict[str, Any]:
    inv = fixture("invoice")
    inv.update(id=unique("in"), customer=customer, customer_email=email, status="paid",
               billing_reason="subscription_cycle", livemode=False)
    inv["parent"] = {"type": "subscription_details", "quote_details": None,
                     "subscription_details": {"subscription": subscription, "metadata": {}}}
    line = fixture("invoice_line_item")
    line["pricing"] = {"type": "price_details", "unit_amount_decimal": None,
                       "price_details": {"price": price, "product": product}}
    inv["lines"] = {"object": "list", "data": [line], "has_more": False, "url": f"/v1/invoices/{inv['id']}/lines"}
    return inv


def subscription(customer: str, status: str, price: str, product: str, *, sub_id: str | None = None,
                 period_end: int | None = None, cancel_at_period_end: bool = False) -> dict[str, Any]:
    sub = fixture("subscription")
    now = int(time.time())
    sub.update(id=sub_id or unique("sub"), customer=customer, status=status, cancel_at_period_end=cancel_at_period_end,
               cancel_at=None, canceled_at=None, ended_at=now if status == "canceled" else None, livemode=False,
               created=now - 86400)
    item = sub["items"]["data"][0]
    item["price"].update(id=price, product=product, lookup_key=None)
    item.update(current_period_start=now - 86400, current_period_end=period_end or now + 29 * 86400)
    sub["items"]["data"] = [item]
    return sub


def charge(payment_intent: str, *, amount: int = 4900, refunded_amount: int = 0, customer: str | None = None) -> dict[str, Any]:
    ch = fixture("charge")
    ch.update(id=unique("ch"), payment_intent=payment_intent, amount=amount, amount_refunded=refunded_amount,
              refunded=refunded_amount >= amount, customer=customer, status="succeeded", livemode=False)
    return ch


def dispute(payment_intent: str, charge_id: str, status: str = "needs_response") -> dict[str, Any]:
    d = fixture("dispute")
    d.update(id=unique("du"), payment_intent=payment_intent, charge=charge_id, status=status, livemode=False)
    return d


def customer_object(customer: str, email: str) -> dict[str, Any]:
    c = fixture("customer")
    c.update(id=customer, email=email, livemode=False)
    return c


def entitlement_summary(customer: str, features: list[str]) -> dict[str, Any]:
    s = fixture("entitlements_active_entitlement_summary")
    s.update(customer=customer, livemode=False)
    s["entitlements"] = {"object": "list", "has_more": False, "url": "/v1/entitlements/active_entitlements",
                         "data": [{"id": unique("ent"), "object": "entitlements.active_entitlement", "livemode": False,
                                   "lookup_key": f, "feature": {"id": unique("feat"), "lookup_key": f}} for f in features]}
    return s
