"""Stripe object templates: the real fixture JSON from shared/, or minimal built-in shapes.

stripe.md §11 and shared/fixtures/stripe/README.md: the fixtures' *shapes* are authoritative,
their *values* are not (placeholder timestamps, inconsistent periods). So each template is
loaded as-is and then the values that would mislead access decisions are neutralised; tests
set every value they depend on.
"""

from __future__ import annotations

import copy
import json
import os
from functools import cache
from pathlib import Path
from typing import Any

# /work/main/frontdesk/fakes/stripe_fixtures.py → /work/shared/fixtures/stripe/openapi-fixtures3
FIXTURES_DIR = (
    Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "stripe"
    / "openapi-fixtures3"
)

# Used only when the shared folder is missing (e.g. the package installed elsewhere).
MINIMAL: dict[str, dict[str, Any]] = {
    "checkout_session": {
        "id": "cs_test_fake", "object": "checkout.session", "created": 0, "livemode": False,
        "mode": "payment", "status": "complete", "payment_status": "paid", "customer": None,
        "customer_email": None, "customer_details": {"email": None, "name": None},
        "client_reference_id": None, "metadata": {}, "subscription": None,
        "payment_intent": None, "invoice": None, "amount_total": 0, "currency": "usd",
    },
    "checkout_session_line_item": {
        "id": "li_fake", "object": "item", "amount_discount": 0, "amount_subtotal": 0,
        "amount_tax": 0, "amount_total": 0, "currency": "usd", "description": "",
        "quantity": 1, "metadata": None,
        "price": {"id": "price_fake", "object": "price", "product": "prod_fake",
                  "type": "one_time", "recurring": None, "unit_amount": 0, "currency": "usd",
                  "active": True, "livemode": False, "metadata": {}},
    },
    "subscription": {
        "id": "sub_fake", "object": "subscription", "created": 0, "livemode": False,
        "customer": "cus_fake", "status": "active", "cancel_at_period_end": False,
        "cancel_at": None, "canceled_at": None, "ended_at": None, "trial_end": None,
        "trial_start": None, "pause_collection": None, "metadata": {},
        "items": {"object": "list", "data": [], "has_more": False, "url": ""},
    },
    "subscription_item": {
        "id": "si_fake", "object": "subscription_item", "created": 0, "metadata": {},
        "quantity": 1, "subscription": "sub_fake", "current_period_start": 0,
        "current_period_end": 0,
        "price": {"id": "price_fake", "object": "price", "product": "prod_fake",
                  "type": "recurring", "recurring": {"interval": "month", "interval_count": 1},
                  "unit_amount": 0, "currency": "usd", "active": True, "livemode": False,
                  "metadata": {}},
    },
    "customer": {
        "id": "cus_fake", "object": "customer", "created": 0, "livemode": False, "email": None,
        "name": None, "metadata": {}, "deleted": None,
    },
    "deleted_customer": {"deleted": True, "id": "cus_fake", "object": "customer"},
    "event": {
        "id": "evt_fake", "object": "event", "api_version": None, "created": 0,
        "livemode": False, "pending_webhooks": 0, "type": "ping",
        "request": {"id": None, "idempotency_key": None}, "data": {"object": {}},
    },
}


@cache
def _load(name: str) -> dict[str, Any]:
    folder = Path(os.environ.get("FRONTDESK_STRIPE_FIXTURES", FIXTURES_DIR))
    try:
        data = json.loads((folder / f"{name}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return MINIMAL[name]
    return data if isinstance(data, dict) else MINIMAL[name]


def template(name: str) -> dict[str, Any]:
    """A fresh deep copy of the named template, with misleading values neutralised."""
    obj = copy.deepcopy(_load(name))
    if name == "subscription":
        # The fixture is `active` yet cancelled, ended and paused (README caveats); a fresh
        # fake subscription is a plain active one until a test says otherwise.
        obj.update(cancel_at=None, canceled_at=None, ended_at=None, cancel_at_period_end=False,
                   trial_end=None, trial_start=None, pause_collection=None, pending_update=None,
                   schedule=None, latest_invoice=None)
        obj["items"] = {"object": "list", "data": [], "has_more": False, "url": ""}
    if name == "subscription_item":
        obj.pop("plan", None)  # Basil+: read `price`, not the legacy `plan` (stripe.md §6)
    if name == "event":
        obj["data"] = {"object": {}}  # the fixture's plan is pre-Basil (`aggregate_usage`)
    if name == "checkout_session_line_item":
        obj["price"]["type"] = "one_time"
        obj["price"]["recurring"] = None
        obj["price"].pop("transform_quantity", None)
    return obj
