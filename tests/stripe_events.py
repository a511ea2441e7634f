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
