"""Manual overrides: access granted or revoked by hand, with a reason and an optional expiry.
Each one is audited and applied at once; reconciliation and later events respect it until it
expires or is removed."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from frontdesk.audit.models import record
from frontdesk.customers.models import Customer, Override
from frontdesk.customers.recompute import recompute
from frontdesk.rules.models import RulesVersion


class OverrideError(ValueError):
    pass


def _check(name: str, reason: str, expires_at: datetime | None) -> None:
    rules = RulesVersion.current()
    if rules is None or name not in rules.parsed["entitlements"]:
        known = ", ".join(sorted(rules.parsed["entitlements"])) if rules else "none: load rules first"
        raise OverrideError(f"'{name}' is not an entitlement in the current rules (known: {known})")
    if not reason.strip():
        raise OverrideError("a reason is required: it is shown to whoever looks at this customer next")
    if expires_at is not None and expires_at <= timezone.now():
        raise OverrideError("the expiry is in the past")


def create(customer: Customer, name: str, action: str, reason: str, actor: str,
           expires_at: datetime | None = None) -> Override:
    _check(name, reason, expires_at)
    with transaction.atomic():
        override = Override.objects.create(customer=customer, name=name, action=action, reason=reason.strip(),
                                           expires_at=expires_at, created_by=actor)
        record(actor, f"override_{action}", f"customer:{customer.pk}", reason=reason.strip(),
               after={"override": override.pk, "entitlement": name,
                      "expires_at": expires_at.isoformat() if expires_at else None})
        recompute(customer.pk, f"override:{override.pk}", correlation_id=f"override{override.pk}")
    return override


def remove(override: Override, actor: str, reason: str) -> None:
    if override.removed_at is not None:
        raise OverrideError(f"override {override.pk} was already removed")
    if not reason.strip():
        raise OverrideError("a reason is required")
    with transaction.atomic():
        override.removed_at, override.removed_by = timezone.now(), actor
        override.save(update_fields=["removed_at", "removed_by"])
        record(actor, "override_removed", f"customer:{override.customer_id}", reason=reason.strip(),
               before={"override": override.pk, "entitlement": override.name, "action": override.action})
        recompute(override.customer_id, f"override:{override.pk}:removed", correlation_id=f"override{override.pk}")
