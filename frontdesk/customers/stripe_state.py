"""Keeping the newest known state of each Stripe object.

Stripe neither orders nor deduplicates deliveries (stripe.md §2). A version is ordered by the
event's `created`, then by how far along the lifecycle its status is (ties at 1-second
resolution are common), then by event id, so the stored state is the same for any arrival
order. An object fetched from the API is the newest of all: it is the current state.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction

from frontdesk.customers.models import Customer, StripeObject, StripeObjectVersion

# Later in the lifecycle wins a tie in `created` (docs.stripe.com/billing/subscriptions/overview).
STATUS_RANK = {
    "incomplete": 1, "trialing": 2, "active": 3, "past_due": 4, "unpaid": 5, "paused": 6,
    "canceled": 7, "incomplete_expired": 7,
    "open": 1, "complete": 3, "expired": 4,  # checkout sessions
    "draft": 1, "uncollectible": 4, "void": 5, "paid": 6,  # invoices
    "warning_needs_response": 1, "needs_response": 1, "under_review": 2, "warning_under_review": 2,
    "won": 3, "lost": 3, "warning_closed": 3,  # disputes
}


@dataclass(frozen=True)
class Version:
    created: int
    rank: int
    event_id: str

    @property
    def key(self) -> tuple[int, int, str]:
        return (self.created, self.rank, self.event_id)


def status_of(data: dict[str, Any]) -> str:
    return str(data.get("status") or "")


def rank_of(data: dict[str, Any]) -> int:
    """Lifecycle position; paid comes after unpaid (sessions), fully refunded after not (charges)."""
    done = data.get("payment_status") in ("paid", "no_payment_required") or data.get("refunded") is True
    return STATUS_RANK.get(status_of(data), 0) * 2 + int(done)


def record(object_type: str, data: dict[str, Any], created: int, event_id: str, *,
           customer: Customer | None = None, link: str = "") -> tuple[StripeObject, bool]:
    """Store ``data`` as a version of the object; returns (row, whether it is now the newest)."""
    version = Version(created, rank_of(data), event_id)
    stripe_customer = data.get("customer") if isinstance(data.get("customer"), str) else ""
    for _ in range(3):
        try:
            with transaction.atomic():
                row = StripeObject.objects.select_for_update().filter(
                    object_type=object_type, object_id=data["id"]).first()
                if row is None:
                    row = StripeObject.objects.create(
                        object_type=object_type, object_id=data["id"], customer=customer,
                        stripe_customer_id=stripe_customer or "", link=link, data=data,
                        version_created=created, version_rank=version.rank, version_event=event_id)
                    newest = True
                else:
                    newest = version.key > (row.version_created, row.version_rank, row.version_event)
                    if newest:
                        row.data, row.version_created, row.version_rank, row.version_event = (
                            data, created, version.rank, event_id)
                    if customer is not None and row.customer_id is None:
                        row.customer = customer
                    row.stripe_customer_id = row.stripe_customer_id or stripe_customer or ""
                    row.link = row.link or link
                StripeObjectVersion.objects.get_or_create(obj=row, created=created, rank=version.rank,
                                                          event_id=event_id, defaults={"status": status_of(data)})
                row.status_since = _status_since(row)
                row.save()
                return row, newest
        except IntegrityError:  # two first versions raced; the loser retries as an update
            continue
    raise RuntimeError(f"could not record {object_type} {data['id']}")


def _status_since(row: StripeObject) -> int | None:
    """When the object entered its current status: the earliest version of the newest run of
    versions with that status."""
    versions = list(row.versions.order_by("-created", "-rank", "-event_id").values_list("created", "status"))
    if not versions:
        return None
    current = versions[0][1]
    since = versions[0][0]
    for created, status in versions:
        if status != current:
            break
        since = created
    return since
