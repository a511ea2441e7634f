"""Turning a stored Stripe event into customers, entitlements and provider sync jobs.

Runs in a worker as the ``stripe.process_event`` job, never in the webhook request: reading
line items may need the Stripe API. Re-running it is harmless (replay, or a retry after a crash).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from django.db import transaction
from django.utils import timezone

from frontdesk.connectors.http import PERMANENT, ProviderError
from frontdesk.connectors.stripe.client import StripeClient
from frontdesk.customers.access import find_or_create_customer, grant
from frontdesk.customers.locks import lock_person
from frontdesk.intake import purchases
from frontdesk.intake.models import Event
from frontdesk.ledger.enqueue import SYNC_KINDS, request_sync
from frontdesk.ledger.models import Job
from frontdesk.logs import email_hash, get_logger
from frontdesk.rules.models import RulesVersion
from frontdesk.rules.schema import entitlements_for

log = get_logger(__name__)


def _checkout(obj: dict[str, Any]) -> purchases.Purchase:
    purchase = purchases.from_checkout_session(obj)
    if purchase.grant and not purchase.items:
        # Line items are not in the event unless expanded (stripe.md §5).
        with StripeClient.from_settings() as stripe:
            purchase.items = [purchases.item_from_price(li.get("price")) for li in stripe.checkout_line_items(obj["id"])]
    return purchase


PARSERS: dict[str, Callable[[dict[str, Any]], purchases.Purchase]] = {
    "checkout.session.completed": _checkout,
    "checkout.session.async_payment_succeeded": _checkout,
    "invoice.paid": purchases.from_invoice,
}
HANDLED_TYPES = frozenset(PARSERS)


def run(job: Job) -> None:
    event = job.event
    if event is None:
        raise ProviderError("stripe", PERMANENT, "event_missing", "the job's event was deleted")
    data = json.loads(event.payload)
    obj = (data.get("data") or {}).get("object")
    if not isinstance(obj, dict) or "id" not in obj:
        _finish(event, Event.FAILED, "no_data_object")
        raise ProviderError("stripe", PERMANENT, "malformed_event", "the event has no data.object with an id")
    purchase = PARSERS[event.type](obj)
    if not purchase.grant:
        _finish(event, Event.PROCESSED, purchase.reason)
        return
    if not purchase.email:
        raise ProviderError("stripe", PERMANENT, "missing_email", f"{event.type} {obj['id']} carries no e-mail")
    rules = RulesVersion.current()
    if rules is None:
        raise ProviderError("stripe", PERMANENT, "no_rules_loaded", "no rules file is loaded: run `frontdesk rules load FILE`")
    names: set[str] = set()
    for item in purchase.items:
        names |= entitlements_for(rules.parsed, item.price, item.product, item.lookup_key)
    with transaction.atomic():
        lock_person(purchase.email)
        customer = find_or_create_customer(purchase.email, purchase.stripe_customer_id, purchase.name)
        changed = grant(customer, names, purchase.source_type, purchase.source_id, rules, event.event_id)
        if changed:
            for provider in SYNC_KINDS:
                request_sync(provider, customer.pk, correlation_id=job.correlation_id,
                             cause=f"job:{job.pk}", event_id=event.pk)
        Event.objects.filter(pk=event.pk).update(customer=customer)
        _finish(event, Event.PROCESSED, "" if names else "no_matching_rule")
    log.info("event_processed", event_type=event.type, customer_id=customer.pk, email=email_hash(purchase.email),
             entitlements=sorted(names), changed=changed, rules_version=rules.number)


def _finish(event: Event, status: str, reason: str) -> None:
    Event.objects.filter(pk=event.pk).update(status=status, status_reason=reason, processed_at=timezone.now())
