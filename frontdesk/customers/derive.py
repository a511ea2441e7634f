"""Deriving a customer's entitlements from the newest known Stripe objects and the rules.

The access policy (docs/access-policy.md): a subscription grants while `active` or
`trialing`; `past_due` keeps access for a grace period (rules `policy.past_due_grace_days`,
default 3) and then suspends it; `canceled`, `unpaid`, `incomplete_expired` and `paused`
revoke; `incomplete` never grants; a subscription set to cancel at period end keeps access
until that moment. A paid one-off Checkout Session grants for life or for `duration_days`; a
full refund revokes it, a partial one does not; an open dispute suspends it (policy `revoke`)
or only flags it (policy `flag`). Until frontdesk has seen a subscription itself, a completed
checkout or a paid invoice for it grants provisionally.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from frontdesk.customers.models import Customer, Entitlement, StripeObject
from frontdesk.rules.schema import grants_for, policy

GRANTING = ("active", "trialing")
REVOKING = ("canceled", "unpaid", "incomplete_expired", "paused", "incomplete")
OPEN_DISPUTE = ("warning_needs_response", "needs_response", "under_review", "warning_under_review", "lost")


@dataclass
class Derived:
    name: str
    source_type: str
    source_id: str
    status: str
    expires_at: datetime | None = None
    reason: str = ""


def _ts(value: Any) -> datetime | None:
    return datetime.fromtimestamp(value, tz=UTC) if isinstance(value, int) and value > 0 else None


def _items_of(obj: dict[str, Any]) -> list[dict[str, Any]]:
    """Prices of a subscription, a checkout session (items resolved at processing), an invoice."""
    if "_frontdesk_items" in obj:
        return list(obj["_frontdesk_items"])
    items = []
    for item in (obj.get("items") or {}).get("data", []):
        price = item.get("price") or {}
        product = price.get("product")
        items.append({"price": price.get("id"), "lookup_key": price.get("lookup_key"),
                      "product": product.get("id") if isinstance(product, dict) else product,
                      "period_end": item.get("current_period_end")})
    return items


def _grants(rules: dict[str, Any], obj: dict[str, Any]) -> dict[str, int | None]:
    grants: dict[str, int | None] = {}
    for item in _items_of(obj):
        for name, days in grants_for(rules, item.get("price"), item.get("product"), item.get("lookup_key")).items():
            if name not in grants or grants[name] is not None and (days is None or days > grants[name]):
                grants[name] = days
    return grants


def subscription_access(sub: StripeObject, grace_days: int, now: datetime) -> tuple[str, datetime | None, str]:
    data = sub.data
    status = str(data.get("status") or "")
    period_end = max((i.get("period_end") or 0 for i in _items_of(data)), default=0) or data.get("current_period_end")
    if status in GRANTING:
        ends = None
        cancel_at = data.get("cancel_at")
        if data.get("cancel_at_period_end") and period_end:
            ends = _ts(period_end)
        elif isinstance(cancel_at, int) and cancel_at:
            ends = _ts(cancel_at)
        if ends is not None and ends <= now:
            return Entitlement.REVOKED, None, "the subscription ended at its period end"
        return Entitlement.ACTIVE, ends, f"subscription {status}" + (" until period end" if ends else "")
    if status == "past_due":
        since = _ts(sub.status_since) or now
        grace_end = since + timedelta(days=grace_days)
        if grace_end > now:
            return Entitlement.ACTIVE, grace_end, f"payment past due; grace period until {grace_end:%Y-%m-%d %H:%M} UTC"
        return Entitlement.SUSPENDED, None, "payment past due beyond the grace period"
    if status in REVOKING:
        return Entitlement.REVOKED, None, f"subscription {status}"
    return Entitlement.REVOKED, None, f"subscription status {status or 'unknown'}"


def derive(customer: Customer, rules: dict[str, Any], now: datetime) -> list[Derived]:
    pol = policy(rules)
    objects = list(customer.stripe_objects.all())
    by_type: dict[str, list[StripeObject]] = {}
    for o in objects:
        by_type.setdefault(o.object_type, []).append(o)
    out: list[Derived] = []
    subscriptions = {o.object_id: o for o in by_type.get("subscription", [])}

    for sub in subscriptions.values():
        status, expires, reason = subscription_access(sub, pol["past_due_grace_days"], now)
        out += [Derived(n, "subscription", sub.object_id, status, expires, reason) for n in _grants(rules, sub.data)]

    # Charges and disputes reach a one-off purchase through its payment intent.
    intents = {o.link for o in by_type.get("checkout_session", []) if o.link}
    related = StripeObject.objects.filter(object_type__in=("charge", "dispute"), link__in=intents) if intents else []
    refunded = {o.link for o in related if o.object_type == "charge" and o.data.get("refunded")}
    disputed = {o.link for o in related if o.object_type == "dispute" and o.data.get("status") in OPEN_DISPUTE}

    provisional: set[str] = set()
    for session in by_type.get("checkout_session", []):
        data = session.data
        paid = data.get("payment_status") in ("paid", "no_payment_required") and data.get("status") != "expired"
        grants = _grants(rules, data)
        if data.get("mode") == "subscription":
            sub_id = data.get("subscription")
            if sub_id and sub_id not in subscriptions and paid:
                provisional.add(sub_id)
                out += [Derived(n, "subscription", sub_id, Entitlement.ACTIVE, None,
                                "checkout completed; subscription not seen yet") for n in grants]
            continue
        for name, days in grants.items():
            if not paid:
                out.append(Derived(name, "checkout_session", session.object_id, Entitlement.REVOKED, None,
                                   "payment not completed"))
                continue
            expires = _ts(data.get("created")) + timedelta(days=days) if days and _ts(data.get("created")) else None
            if session.link in refunded:
                status, reason = Entitlement.REVOKED, "fully refunded"
            elif session.link in disputed and pol["dispute"] == "revoke":
                status, reason = Entitlement.SUSPENDED, "payment disputed"
            elif expires is not None and expires <= now:
                status, reason = Entitlement.REVOKED, f"purchase expired after {days} days"
            else:
                status = Entitlement.ACTIVE
                reason = "paid" + (" (disputed: flagged for support)" if session.link in disputed else "")
            out.append(Derived(name, "checkout_session", session.object_id, status, expires if status == "active" else None, reason))

    for invoice in by_type.get("invoice", []):
        sub_id = invoice.link
        if not sub_id or sub_id in subscriptions or sub_id in provisional or invoice.data.get("status") != "paid":
            continue
        provisional.add(sub_id)
        out += [Derived(n, "subscription", sub_id, Entitlement.ACTIVE, None, "invoice paid; subscription not seen yet")
                for n in _grants(rules, invoice.data)]

    summaries = sorted(by_type.get("entitlement_summary", []), key=lambda o: o.version_created)
    if summaries:
        summary = summaries[-1]
        features = [e.get("lookup_key") or (e.get("feature") or {}).get("lookup_key")
                    for e in (summary.data.get("entitlements") or {}).get("data", [])]
        names = set()
        for feature in filter(None, features):
            names |= set(grants_for(rules, feature=feature))
        out += [Derived(n, "stripe_entitlements", f"summary:{customer.stripe_customer_id}", Entitlement.ACTIVE, None,
                        "listed in Stripe's active entitlements") for n in sorted(names)]
    return _merge(out)


def _merge(derived: list[Derived]) -> list[Derived]:
    """One row per (name, source): an active grant wins over a revoked one from the same source."""
    rank = {Entitlement.ACTIVE: 2, Entitlement.SUSPENDED: 1, Entitlement.REVOKED: 0}
    best: dict[tuple[str, str], Derived] = {}
    for d in derived:
        key = (d.name, d.source_id)
        if key not in best or rank[d.status] > rank[best[key].status]:
            best[key] = d
    return list(best.values())
