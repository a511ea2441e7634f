"""Turning a stored Stripe event into Stripe object state, customers, entitlements and jobs.

Runs in a worker as the ``stripe.process_event`` job, never in the webhook request: it may
read the Stripe API. Each event records the newest known state of its object; the customer's
entitlements are then derived again from all their objects (customers/derive.py), so the
order of delivery does not matter and re-running is harmless (replay, retry after a crash).
"""

from __future__ import annotations

import contextvars
import json
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from frontdesk.connectors.http import PERMANENT, ProviderError
from frontdesk.connectors.stripe.client import StripeClient
from frontdesk.customers import stripe_state
from frontdesk.customers.access import find_or_create_customer, normalise_email
from frontdesk.customers.locks import lock_person
from frontdesk.customers.models import Customer, StripeObject
from frontdesk.customers.recompute import recompute
from frontdesk.intake import purchases
from frontdesk.intake.models import Event
from frontdesk.ledger.enqueue import request_syncs
from frontdesk.ledger.models import Job
from frontdesk.logs import email_hash, get_logger
from frontdesk.rules.models import RulesVersion

log = get_logger(__name__)


class Context:
    def __init__(self, job: Job, event: Event, data: dict[str, Any]) -> None:
        self.job, self.event, self.data = job, event, data
        self.created = int(data.get("created") or time.time())
        self.cause = f"event:{event.event_id}"

    def record(self, object_type: str, obj: dict[str, Any], *, customer: Customer | None = None,
               link: str = "", created: int | None = None) -> StripeObject:
        row, _ = stripe_state.record(object_type, obj, created or self.created, self.event.event_id,
                                     customer=customer, link=link)
        return row


# Stripe API reads made before the processing transaction (see _prefetch), by (resource, id).
_reads: contextvars.ContextVar[dict[tuple[str, str], Any] | None] = contextvars.ContextVar("stripe_reads", default=None)


def _customer_for(stripe_customer_id: str | None, email: str | None, name: str = "") -> Customer | None:
    if stripe_customer_id:
        # customer.updated takes the same lock: an e-mail change and the event that creates
        # the customer take turns, and the newest known e-mail wins over the one an older
        # object (a Checkout Session, an invoice) was made with.
        lock_person(f"stripe-customer:{stripe_customer_id}")
        newest = StripeObject.objects.filter(object_type="customer", object_id=stripe_customer_id).values_list(
            "data", flat=True).first()
        if newest and newest.get("email") and not newest.get("deleted"):
            email = newest["email"]
    if email:
        lock_person(email)
        return find_or_create_customer(email, stripe_customer_id, name)
    if stripe_customer_id:
        customer = Customer.objects.filter(stripe_customer_id=stripe_customer_id).first()
        if customer is None and settings.STRIPE_API_KEY:
            found = _fetch("customers", stripe_customer_id)
            if found and found.get("email") and not found.get("deleted"):
                return _customer_for(stripe_customer_id, found["email"], found.get("name") or "")
        return customer or Customer.objects.get_or_create(stripe_customer_id=stripe_customer_id,
                                                          defaults={"email": ""})[0]
    return None


def _fetch(resource: str, object_id: str) -> dict[str, Any] | None:
    """The object's current state from the Stripe API, or None when it is not there."""
    reads = _reads.get()
    if reads is not None and (resource, object_id) in reads:
        return reads[(resource, object_id)]
    with StripeClient.from_settings() as stripe:
        response = stripe.request("GET", f"/v1/{resource}/{object_id}", ok=(200, 404))
    found = response.json() if response.status_code == 200 else None
    if reads is not None:
        reads[(resource, object_id)] = found
    return found


def _line_items(session_id: str) -> list[dict[str, Any]]:
    reads = _reads.get()
    if reads is not None and ("line_items", session_id) in reads:
        return reads[("line_items", session_id)]  # type: ignore[no-any-return]
    with StripeClient.from_settings() as stripe:  # not in the event unless expanded (stripe.md §5)
        found = stripe.checkout_line_items(session_id)
    if reads is not None:
        reads[("line_items", session_id)] = found
    return found


def _items(session: dict[str, Any]) -> list[dict[str, Any]]:
    purchase = purchases.from_checkout_session(session)
    items = purchase.items
    if not items:
        items = [purchases.item_from_price(li.get("price")) for li in _line_items(session["id"])]
    return [{"price": i.price, "product": i.product, "lookup_key": i.lookup_key} for i in items]


# --- one function per event family -----------------------------------------------------------

def checkout_session(ctx: Context, obj: dict[str, Any]) -> Customer | None:
    purchase = purchases.from_checkout_session(obj)
    if not purchase.email and not purchase.stripe_customer_id:
        raise ProviderError("stripe", PERMANENT, "missing_email", f"{ctx.event.type} {obj['id']} carries no e-mail")
    data = dict(obj)
    if purchase.grant or ctx.event.type == "checkout.session.async_payment_succeeded":
        data["_frontdesk_items"] = _items(obj)
    customer = _customer_for(purchase.stripe_customer_id, purchase.email, purchase.name)
    ctx.record("checkout_session", data, customer=customer, link=obj.get("payment_intent") or "")
    if ctx.event.type == "checkout.session.async_payment_failed":
        from frontdesk.support.notices import payment_failed
        payment_failed(customer, obj["id"], "the delayed payment for a checkout failed", ctx.job.correlation_id)
    return customer


def subscription(ctx: Context, obj: dict[str, Any]) -> Customer | None:
    customer = _customer_for(obj.get("customer"), None)
    ctx.record("subscription", obj, customer=customer)
    if settings.STRIPE_API_KEY:
        current = _fetch("subscriptions", obj["id"])
        if current is not None:  # the current state outranks every event snapshot
            ctx.record("subscription", current, customer=customer, created=int(time.time()))
    return customer


def invoice(ctx: Context, obj: dict[str, Any]) -> Customer | None:
    purchase = purchases.from_invoice(obj)
    customer = _customer_for(purchase.stripe_customer_id, purchase.email, purchase.name)
    data = {**obj, "_frontdesk_items": [{"price": i.price, "product": i.product, "lookup_key": i.lookup_key}
                                        for i in purchase.items]}
    link = purchase.source_id if purchase.source_type == "subscription" else ""
    ctx.record("invoice", data, customer=customer, link=link)
    if link and settings.STRIPE_API_KEY and not StripeObject.objects.filter(object_type="subscription", object_id=link).exists():
        current = _fetch("subscriptions", link)
        if current is not None:
            ctx.record("subscription", current, customer=customer, created=int(time.time()))
    if ctx.event.type == "invoice.payment_failed":
        from frontdesk.support.notices import payment_failed
        payment_failed(customer, obj["id"], "a subscription payment failed", ctx.job.correlation_id)
    return customer


def charge(ctx: Context, obj: dict[str, Any]) -> Customer | None:
    row = ctx.record("charge", obj, link=obj.get("payment_intent") or "")
    return _owner_of(row.link, obj.get("customer"))


def dispute(ctx: Context, obj: dict[str, Any]) -> Customer | None:
    row = ctx.record("dispute", obj, link=obj.get("payment_intent") or "")
    customer = _owner_of(row.link, None)
    if ctx.event.type == "charge.dispute.created":
        from frontdesk.support.notices import dispute_opened
        dispute_opened(customer, obj["id"], ctx.job.correlation_id)
    return customer


def _owner_of(payment_intent: str, stripe_customer_id: str | None) -> Customer | None:
    session = StripeObject.objects.filter(object_type="checkout_session", link=payment_intent).exclude(
        customer=None).first() if payment_intent else None
    if session is not None:
        return session.customer
    if stripe_customer_id:
        return Customer.objects.filter(stripe_customer_id=stripe_customer_id).first()
    return None  # the purchase arrives later; its processing will see this charge


def customer_updated(ctx: Context, obj: dict[str, Any]) -> Customer | None:
    """An e-mail change moves the person: the same customer row, the same Circle member and
    Kit subscriber (their syncs carry the change over), never a duplicate."""
    lock_person(f"stripe-customer:{obj['id']}")  # see _customer_for
    customer = Customer.objects.filter(stripe_customer_id=obj["id"]).first()
    row = ctx.record("customer", obj, customer=customer)
    if customer is None or row.version_event != ctx.event.event_id:
        return customer  # unknown person, or an older snapshot than one already applied
    email = normalise_email(obj.get("email") or "")
    if email and email != customer.email:
        old = customer.email
        customer.email = email
        customer.save(update_fields=["email", "updated_at"])
        log.info("customer_email_changed", customer_id=customer.pk, old=email_hash(old), new=email_hash(email))
        request_syncs(customer.pk, correlation_id=ctx.job.correlation_id, cause=ctx.cause)
    return customer


def entitlement_summary(ctx: Context, obj: dict[str, Any]) -> Customer | None:
    customer = _customer_for(obj.get("customer"), None)
    ctx.record("entitlement_summary", obj, customer=customer)
    return customer


PARSERS: dict[str, Callable[[Context, dict[str, Any]], Customer | None]] = {
    "checkout.session.completed": checkout_session,
    "checkout.session.async_payment_succeeded": checkout_session,
    "checkout.session.async_payment_failed": checkout_session,
    "checkout.session.expired": checkout_session,
    "invoice.paid": invoice,
    "invoice.payment_failed": invoice,
    "customer.subscription.created": subscription,
    "customer.subscription.updated": subscription,
    "customer.subscription.deleted": subscription,
    "customer.subscription.paused": subscription,
    "customer.subscription.resumed": subscription,
    "charge.refunded": charge,
    "charge.dispute.created": dispute,
    "charge.dispute.closed": dispute,
    "customer.updated": customer_updated,
    "entitlements.active_entitlement_summary.updated": entitlement_summary,
}
HANDLED_TYPES = frozenset(PARSERS)


def _prefetch(event_type: str, obj: dict[str, Any]) -> None:
    """Make the Stripe API reads this event needs before the processing transaction opens.
    An HTTP call (up to FRONTDESK_HTTP_TIMEOUT) must not run while the transaction holds row
    locks, and the shared rate slot (an UPDATE of ledger_rateslot) must commit at once instead
    of staying locked until the transaction ends: that serialised all processing and deadlocked
    with the per-person advisory locks. Reads are cached for the parser; a read this misses is
    still made inside, as before."""
    parser = PARSERS[event_type]
    customer_id = obj.get("customer") if isinstance(obj.get("customer"), str) else None
    if parser is checkout_session:
        purchase = purchases.from_checkout_session(obj)
        if purchase.grant or event_type == "checkout.session.async_payment_succeeded":
            _items(obj)
    elif parser in (subscription, entitlement_summary):
        if customer_id and not Customer.objects.filter(stripe_customer_id=customer_id).exists():
            _fetch("customers", customer_id)
        if parser is subscription:
            _fetch("subscriptions", obj["id"])
    elif parser is invoice:
        purchase = purchases.from_invoice(obj)
        if purchase.source_type == "subscription" and not StripeObject.objects.filter(
                object_type="subscription", object_id=purchase.source_id).exists():
            _fetch("subscriptions", purchase.source_id)


def run(job: Job) -> None:
    event = job.event
    if event is None:
        raise ProviderError("stripe", PERMANENT, "event_missing", "the job's event was deleted")
    if not event.payload:
        raise ProviderError("stripe", PERMANENT, "payload_pruned", "the event's payload was pruned")
    data = json.loads(event.payload)
    obj = (data.get("data") or {}).get("object")
    if isinstance(obj, dict) and event.type == "entitlements.active_entitlement_summary.updated":
        obj = {**obj, "id": f"summary:{obj.get('customer')}"}  # the summary has no id of its own
    if not isinstance(obj, dict) or "id" not in obj:
        _finish(event, Event.FAILED, "no_data_object")
        raise ProviderError("stripe", PERMANENT, "malformed_event", "the event has no data.object with an id")
    rules = RulesVersion.current()
    if rules is None:
        raise ProviderError("stripe", PERMANENT, "no_rules_loaded", "no rules file is loaded: run `frontdesk rules load FILE`")
    ctx = Context(job, event, data)
    reads = _reads.set({})
    try:
        if settings.STRIPE_API_KEY:
            _prefetch(event.type, obj)
        customer, changed = _apply(ctx, event, obj, rules, job)
    finally:
        _reads.reset(reads)
    log.info("event_processed", event_type=event.type, customer_id=customer.pk if customer else None,
             email=email_hash(customer.email) if customer else None, changed=changed, rules_version=rules.number)


def _apply(ctx: Context, event: Event, obj: dict[str, Any], rules: RulesVersion, job: Job) -> tuple[Customer | None, bool]:
    with transaction.atomic():
        customer = PARSERS[event.type](ctx, obj)
        changed = False
        if customer is not None:
            changed = recompute(customer.pk, ctx.cause, correlation_id=job.correlation_id, rules=rules)
            if getattr(customer, "email_added", False) and not changed:
                # Access existed before the e-mail was known; now the providers can get it.
                request_syncs(customer.pk, correlation_id=job.correlation_id, cause=ctx.cause)
            Event.objects.filter(pk=event.pk).update(customer=customer)
        _finish(event, Event.PROCESSED, "" if customer else "customer_unknown")
    return customer, changed


def _finish(event: Event, status: str, reason: str) -> None:
    Event.objects.filter(pk=event.pk).update(status=status, status_reason=reason, processed_at=timezone.now())
