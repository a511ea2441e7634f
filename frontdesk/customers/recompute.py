"""Bringing a customer's entitlement rows in line with what the Stripe objects, the rules and
the manual overrides say, recording every change in the history and queueing provider syncs."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from frontdesk.customers.derive import Derived, derive
from frontdesk.customers.models import Customer, Entitlement, EntitlementChange, Override
from frontdesk.ledger.enqueue import request_syncs
from frontdesk.logs import get_logger
from frontdesk.rules.models import RulesVersion

log = get_logger(__name__)


def _with_overrides(customer: Customer, derived: list[Derived], now: datetime) -> list[Derived]:
    overrides = [o for o in customer.overrides.all() if o.is_active(now)]
    revoked = {o.name: o for o in overrides if o.action == Override.REVOKE}
    out = []
    for d in derived:
        if d.name in revoked and d.status == Entitlement.ACTIVE:
            o = revoked[d.name]
            d = Derived(d.name, d.source_type, d.source_id, Entitlement.REVOKED, None,
                        f"revoked by hand by {o.created_by}: {o.reason}")
        out.append(d)
    for o in overrides:
        if o.action == Override.GRANT and o.name not in revoked:
            out.append(Derived(o.name, "override", f"override:{o.pk}", Entitlement.ACTIVE, o.expires_at,
                               f"granted by hand by {o.created_by}: {o.reason}"))
    # An override that ended leaves its row to be revoked below (it is no longer derived).
    return out


def recompute(customer_id: int, cause: str, *, correlation_id: str = "", now: datetime | None = None,
              rules: RulesVersion | None = None) -> bool:
    """Returns True when an entitlement changed (and syncs were queued)."""
    now = now or timezone.now()
    rules = rules or RulesVersion.current()
    if rules is None:
        return False
    with transaction.atomic():
        customer = Customer.objects.select_for_update().get(pk=customer_id)
        wanted = {(d.name, d.source_id): d for d in _with_overrides(customer, derive(customer, rules.parsed, now), now)}
        existing = {(e.name, e.source_id): e for e in customer.entitlements.all()}
        changed = False
        for key, d in wanted.items():
            row = existing.get(key)
            if row is None:
                if d.status != Entitlement.ACTIVE:
                    continue  # never granted: nothing to record
                row = Entitlement.objects.create(customer=customer, name=d.name, source_type=d.source_type,
                                                 source_id=d.source_id, status=d.status, expires_at=d.expires_at,
                                                 reason=d.reason, rules_version=rules, event_id=_event(cause))
                _history(customer, row, "", None, cause, rules.number)
                changed = True
            elif (row.status, row.expires_at) != (d.status, d.expires_at) or row.reason != d.reason:
                before, before_expires = row.status, row.expires_at
                row.status, row.expires_at, row.reason, row.rules_version = d.status, d.expires_at, d.reason, rules
                if _event(cause):
                    row.event_id = _event(cause)
                row.save()
                if (before, before_expires) != (row.status, row.expires_at):
                    _history(customer, row, before, before_expires, cause, rules.number)
                    changed = changed or before != row.status
        for key, row in existing.items():
            if key not in wanted and row.status != Entitlement.REVOKED:
                before, before_expires = row.status, row.expires_at
                row.status, row.expires_at = Entitlement.REVOKED, None
                row.reason = "no longer granted by the rules" if row.source_type != "override" else "override ended"
                row.save()
                _history(customer, row, before, before_expires, cause, rules.number)
                changed = True
        if changed and customer.email:
            request_syncs(customer.pk, correlation_id=correlation_id or cause[:32], cause=cause)
    if changed:
        log.info("entitlements_changed", customer_id=customer.pk, cause=cause.split(":")[0])
    return changed


def _event(cause: str) -> str:
    return cause.removeprefix("event:") if cause.startswith("event:") else ""


def _history(customer: Customer, row: Entitlement, before: str, before_expires: datetime | None,
             cause: str, rules_number: int) -> None:
    change = EntitlementChange.objects.create(customer=customer, name=row.name, source_id=row.source_id, before=before,
                                     after=row.status, before_expires=before_expires, after_expires=row.expires_at,
                                     cause=cause[:300], rules_version=rules_number, reason=row.reason[:200])
    if before != row.status:
        from frontdesk.support.notices import entitlement_changed

        entitlement_changed(customer, row.name, before, row.status, change.pk, cause[:32])


def due_for_expiry(now: datetime | None = None) -> list[int]:
    """Customers with an active entitlement whose time is up (grace periods, period ends,
    fixed durations, overrides), for the periodic sweep."""
    now = now or timezone.now()
    return list(Entitlement.objects.filter(status=Entitlement.ACTIVE, expires_at__lte=now)
                .values_list("customer_id", flat=True).distinct()[:500])


def conflicts(customer: Customer, now: datetime | None = None) -> list[str]:
    """Disagreements between payments and access that a person should look at."""
    now = now or timezone.now()
    rules = RulesVersion.current()
    derived = derive(customer, rules.parsed, now) if rules else []
    paid = {d.name for d in derived if d.status == Entitlement.ACTIVE}
    failed = {d.name for d in derived if d.status != Entitlement.ACTIVE} - paid
    found = []
    for o in (o for o in customer.overrides.order_by("pk") if o.is_active(now)):
        if o.action == Override.GRANT and o.name in failed:
            found.append(f"access '{o.name}' granted by hand while the payment failed")
        if o.action == Override.REVOKE and o.name in paid:
            found.append(f"payment active but access '{o.name}' revoked by hand")
    for d in derived:
        if d.status == Entitlement.ACTIVE and "disputed" in d.reason:
            found.append(f"payment for '{d.name}' is disputed; access kept by policy")
    return found
