"""Realistic Stripe events for `frontdesk send-test-event` and the sandbox, in the shapes of
Stripe's API (stripe.md §5; field layout as in Stripe's OpenAPI fixtures)."""

from __future__ import annotations

import secrets
import time
from typing import Any


def _id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


def checkout_session(email: str, price: str, *, product: str | None = None, mode: str = "payment",
                     customer: str | None = None, name: str = "", line_items: bool = True) -> dict[str, Any]:
    session_id = _id("cs_test")
    session: dict[str, Any] = {
        "id": session_id, "object": "checkout.session", "mode": mode, "status": "complete",
        "payment_status": "paid", "currency": "usd", "amount_total": 4900, "amount_subtotal": 4900,
        "created": int(time.time()), "livemode": False, "customer": customer,
        "customer_creation": "always" if mode == "payment" else None,
        "customer_details": {"email": email, "name": name or None, "address": None, "phone": None,
                             "tax_exempt": "none", "tax_ids": []},
        "customer_email": None, "client_reference_id": None, "metadata": {},
        "payment_intent": _id("pi") if mode == "payment" else None,
        "subscription": _id("sub") if mode == "subscription" else None,
        "url": None,
    }
    if line_items:  # as returned with expand[]=line_items
        session["line_items"] = {
            "object": "list", "has_more": False, "url": f"/v1/checkout/sessions/{session_id}/line_items",
            "data": [{
                "id": _id("li"), "object": "item", "amount_total": 4900, "amount_subtotal": 4900,
                "currency": "usd", "description": "frontdesk test purchase", "quantity": 1,
                "price": {"id": price, "object": "price", "product": product or _id("prod"),
                          "type": "recurring" if mode == "subscription" else "one_time",
                          "unit_amount": 4900, "currency": "usd", "lookup_key": None, "active": True},
            }],
        }
    return session


def event(event_type: str, obj: dict[str, Any], *, created: int | None = None) -> dict[str, Any]:
    return {
        "id": _id("evt"), "object": "event", "api_version": "2026-10-28.endive",
        "created": int(time.time()) if created is None else created,
        "data": {"object": obj}, "livemode": bool(obj.get("livemode", False)),
        "pending_webhooks": 1, "request": {"id": None, "idempotency_key": None}, "type": event_type,
    }
