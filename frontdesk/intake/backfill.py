"""`frontdesk backfill stripe`: import what Stripe knows and frontdesk missed.

1. customers (`GET /v1/customers`) → customer records with their e-mails;
2. subscriptions (`GET /v1/subscriptions?status=all`) → their current state, which outranks
   every event (customers/stripe_state.py), then entitlements are derived again;
3. events (`GET /v1/events`, the last 30 days Stripe keeps, from --since) → stored through the
   normal intake path, so a missed event is processed exactly as if it had been delivered.

Requests go through the shared Stripe rate limit. Progress is saved after every object, so a
run that fails (a Stripe outage, a deploy) resumes where it stopped.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from frontdesk.connectors.stripe.client import StripeClient
from frontdesk.customers import stripe_state
from frontdesk.customers.access import find_or_create_customer
from frontdesk.customers.models import Customer
from frontdesk.customers.recompute import recompute
from frontdesk.intake import storage
from frontdesk.intake.models import BackfillState
from frontdesk.intake.processing import HANDLED_TYPES
from frontdesk.logs import get_logger

log = get_logger(__name__)
PHASES = ("customers", "subscriptions", "events", "done")


def _page(stripe: StripeClient, path: str, params: dict[str, Any], after: str) -> tuple[list[dict[str, Any]], bool]:
    query = {"limit": 100, **params}
    if after:
        query["starting_after"] = after
    body = stripe.request("GET", path, params=query, ok=(200,)).json()
    return body.get("data") or [], bool(body.get("has_more"))


def _walk(stripe: StripeClient, state: BackfillState, path: str, params: dict[str, Any],
          handle: Callable[[dict[str, Any]], None], max_pages: int = 10_000) -> None:
    """Every object of a list, oldest work saved first; resumes from state.cursor."""
    for _ in range(max_pages):
        items, more = _page(stripe, path, params, state.cursor)
        for item in items:
            handle(item)
            state.cursor = item["id"]
            state.save(update_fields=["cursor", "counts", "updated_at"])
        if not more or not items:
            return


def run(since: datetime | None, *, restart: bool = False, out: Callable[[str], None] = print) -> dict[str, int]:
    state, _ = BackfillState.objects.get_or_create(name="stripe")
    if restart or state.phase in ("", "done") or state.since != since:
        state.phase, state.cursor, state.since, state.counts = "customers", "", since, {}
        state.save()
    else:
        out(f"resuming the backfill at {state.phase} after {state.cursor or 'the start'}")
    run_id = uuid.uuid4().hex[:12]
    created = {"gte": int(since.timestamp())} if since else None
    counts: dict[str, int] = state.counts

    def bump(key: str) -> None:
        counts[key] = counts.get(key, 0) + 1

    def customer(obj: dict[str, Any]) -> None:
        if obj.get("email") and not obj.get("deleted"):
            find_or_create_customer(obj["email"], obj["id"], obj.get("name") or "")
            bump("customers")

    def subscription(obj: dict[str, Any]) -> None:
        owner = Customer.objects.filter(stripe_customer_id=obj.get("customer")).first()
        with transaction.atomic():
            stripe_state.record("subscription", obj, int(time.time()), f"backfill:{run_id}", customer=owner)
            if owner is not None:
                recompute(owner.pk, f"backfill:{run_id}", correlation_id=f"backfill{run_id}")
        bump("subscriptions")

    def event(obj: dict[str, Any]) -> None:
        outcome = storage.store(obj, json.dumps(obj, separators=(",", ":")), timezone.now(), uuid.uuid4().hex)
        bump(f"events_{outcome}")

    with StripeClient.from_settings() as stripe:
        steps = {
            "customers": ("/v1/customers", {"created": created} if created else {}, customer),
            "subscriptions": ("/v1/subscriptions", {"status": "all"}, subscription),
            # Up to 20 exact types per request (stripe.md §8.2); frontdesk handles fewer.
            "events": ("/v1/events", {"types": sorted(HANDLED_TYPES), **({"created": created} if created else {})}, event),
        }
        while state.phase != "done":
            path, params, handle = steps[state.phase]
            _walk(stripe, state, path, _encode(params), handle)
            out(f"{state.phase}: done")
            state.phase, state.cursor = PHASES[PHASES.index(state.phase) + 1], ""
            state.save(update_fields=["phase", "cursor", "updated_at"])
    log.info("backfill_finished", **counts)
    return counts


def _encode(params: dict[str, Any]) -> dict[str, Any]:
    """Stripe's bracket encoding: types[]=a&types[]=b, created[gte]=…"""
    flat: dict[str, Any] = {}
    for key, value in params.items():
        if isinstance(value, list):
            flat[f"{key}[]"] = value
        elif isinstance(value, dict):
            flat.update({f"{key}[{k}]": v for k, v in value.items()})
        else:
            flat[key] = value
    return flat
