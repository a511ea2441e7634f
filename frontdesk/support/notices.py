"""Support notices and outbound webhooks: edge-triggered, exactly once per cause.

A cause is a business object (an invoice whose payment failed, a dispute, a job needing
review). The idempotency key of each message job is built from it, so the same cause delivered
three times (or as two distinct Stripe events) sends one notice per channel.
"""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings

from frontdesk.customers.models import Customer
from frontdesk.ledger.enqueue import enqueue
from frontdesk.logs import email_hash

NOTICE_PRIORITY = 5
# Jobs that deliver messages: their own failures must not notify again (a broken channel
# would otherwise feed itself).
MESSAGE_KINDS = ("notify.", "outbound.")


def _who(customer: Customer | None) -> str:
    if customer is None:
        return "an unknown customer"
    return f"customer {customer.pk} ({customer.email or 'no e-mail yet'})"


def notice(cause: str, text: str, correlation_id: str) -> int:
    """Queue the support notice for ``cause`` on every support channel; returns how many
    messages were newly queued (0 when this cause was already noticed)."""
    queued = 0
    targets = [("slack", settings.SUPPORT["slack_url"]), ("email", settings.SUPPORT["email_to"])]
    for channel, configured in targets:
        if not configured:
            continue
        job = enqueue(f"notify.{channel}", channel, idempotency_key=f"support:{cause}:{channel}",
                      correlation_id=correlation_id, priority=NOTICE_PRIORITY,
                      payload={"target": "support", "text": f"[frontdesk] {text}", "key": cause, "kind": "notice",
                               "rule": "support", "summary": text, "started_at": ""})
        queued += job is not None
    return queued


def emit(event_type: str, cause: str, data: dict[str, Any], correlation_id: str) -> bool:
    """An outbound webhook (Standard Webhooks) for founders' other tools, once per cause."""
    if not settings.OUTBOUND_WEBHOOK["url"]:
        return False
    job = enqueue("outbound.webhook", "webhook", idempotency_key=f"outbound:{event_type}:{cause}",
                  correlation_id=correlation_id, priority=NOTICE_PRIORITY,
                  payload={"type": event_type, "data": json.loads(json.dumps(data, default=str))})
    return job is not None


def payment_failed(customer: Customer | None, object_id: str, what: str, correlation_id: str) -> None:
    notice(f"payment_failed:{object_id}", f"Payment failed for {_who(customer)}: {what} ({object_id}).", correlation_id)
    emit("payment.failed", object_id, {"object": object_id, "customer_id": customer.pk if customer else None,
                                       "email": customer.email if customer else None}, correlation_id)


def dispute_opened(customer: Customer | None, dispute_id: str, correlation_id: str) -> None:
    notice(f"dispute:{dispute_id}", f"A payment by {_who(customer)} is disputed ({dispute_id}). Respond in Stripe.",
           correlation_id)
    emit("dispute.created", dispute_id, {"dispute": dispute_id, "customer_id": customer.pk if customer else None,
                                         "email": customer.email if customer else None}, correlation_id)


def review_needed(job_id: int, kind: str, reason: str, customer: Customer | None, correlation_id: str) -> None:
    if kind.startswith(MESSAGE_KINDS):
        return
    notice(f"review:{job_id}", f"Job {job_id} ({kind}) for {_who(customer)} needs review: {reason}.", correlation_id)
    emit("job.needs_review", str(job_id), {"job_id": job_id, "kind": kind, "reason": reason,
                                          "customer_id": customer.pk if customer else None}, correlation_id)


def entitlement_changed(customer: Customer, name: str, before: str, after: str, change_id: int,
                        correlation_id: str) -> None:
    emit(f"entitlement.{after}", f"change:{change_id}",
         {"customer_id": customer.pk, "email": customer.email, "entitlement": name, "before": before or None,
          "after": after}, correlation_id)


__all__ = ["dispute_opened", "email_hash", "emit", "entitlement_changed", "notice", "payment_failed", "review_needed"]
