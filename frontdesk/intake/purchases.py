"""Reading what was bought, by whom, from Stripe objects (API ≥ 2025-03-31.basil shapes,
stripe.md §5 and §6, with the pre-Basil fallbacks the fixtures still carry)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Item:
    price: str | None
    product: str | None
    lookup_key: str | None = None


@dataclass
class Purchase:
    """What an event says a customer paid for. ``source_type``/``source_id`` key the
    entitlement on the business object, so two events about one purchase converge."""

    email: str | None
    name: str
    stripe_customer_id: str | None
    source_type: str
    source_id: str
    items: list[Item] = field(default_factory=list)
    grant: bool = True
    reason: str = ""


def _id(value: Any) -> str | None:
    if isinstance(value, str):
        return value or None
    if isinstance(value, dict):
        return value.get("id")
    return None


def item_from_price(price: Any) -> Item:
    if isinstance(price, dict):
        return Item(price=price.get("id"), product=_id(price.get("product")), lookup_key=price.get("lookup_key"))
    return Item(price=_id(price), product=None)


def from_checkout_session(session: dict[str, Any]) -> Purchase:
    details = session.get("customer_details") or {}
    email = details.get("email") or session.get("customer_email")
    subscription = _id(session.get("subscription"))
    if session.get("mode") == "subscription" and subscription:
        source_type, source_id = "subscription", subscription
    else:
        source_type, source_id = "checkout_session", session["id"]
    purchase = Purchase(email=email, name=details.get("name") or "", stripe_customer_id=_id(session.get("customer")),
                        source_type=source_type, source_id=source_id)
    line_items = session.get("line_items")
    if isinstance(line_items, dict) and not line_items.get("has_more"):
        purchase.items = [item_from_price(li.get("price")) for li in line_items.get("data", [])]
    # Grant only once paid: 'unpaid' means an async payment method is still pending (stripe.md §4).
    if session.get("payment_status") == "unpaid":
        purchase.grant, purchase.reason = False, "payment_pending"
    return purchase


def from_invoice(invoice: dict[str, Any]) -> Purchase:
    parent = invoice.get("parent") or {}
    subscription = _id((parent.get("subscription_details") or {}).get("subscription")) or _id(invoice.get("subscription"))
    items = []
    for line in (invoice.get("lines") or {}).get("data", []):
        details = (line.get("pricing") or {}).get("price_details") or {}
        if details.get("price"):
            items.append(Item(price=_id(details.get("price")), product=_id(details.get("product"))))
        elif line.get("price"):  # pre-Basil line shape
            items.append(item_from_price(line.get("price")))
    return Purchase(
        email=invoice.get("customer_email"), name=invoice.get("customer_name") or "",
        stripe_customer_id=_id(invoice.get("customer")),
        source_type="subscription" if subscription else "invoice", source_id=subscription or invoice["id"],
        items=items,
    )
