"""Why does this person (not) have access? Everything behind the answer, in words."""

from __future__ import annotations

from django.utils import timezone

from frontdesk.customers.derive import derive
from frontdesk.customers.models import Customer, Entitlement
from frontdesk.customers.recompute import conflicts
from frontdesk.ledger.models import Job
from frontdesk.rules.models import RulesVersion


def find(query: str) -> Customer | None:
    query = query.strip()
    if query.isdigit():
        return Customer.objects.filter(pk=int(query)).first()
    if query.startswith("cus_"):
        return Customer.objects.filter(stripe_customer_id=query).first()
    return Customer.objects.filter(email=query.lower()).order_by("pk").first()


def explain(customer: Customer) -> list[str]:
    now = timezone.now()
    rules = RulesVersion.current()
    lines = [f"Customer {customer.pk}: {customer.email or '(no e-mail yet)'}"
             f"{' · Stripe ' + customer.stripe_customer_id if customer.stripe_customer_id else ''}"]
    active = sorted({e.name for e in customer.entitlements.filter(status=Entitlement.ACTIVE)})
    lines.append(f"Has access to: {', '.join(active) if active else 'nothing'}"
                 f" (rules v{rules.number if rules else '-'})")
    lines.append("")
    lines.append("Entitlements:")
    for e in customer.entitlements.order_by("name", "source_id"):
        until = f" until {e.expires_at:%Y-%m-%d %H:%M} UTC" if e.expires_at else ""
        lines.append(f"  {e.name:<14} {e.status:<9} from {e.source_type} {e.source_id}{until}: {e.reason}"
                     f" (granted under rules v{e.rules_version.number})")
    if rules is not None:
        derived = derive(customer, rules.parsed, now)
        if not derived:
            lines.append("  (no payment that the current rules map to an entitlement)")
    lines.append("")
    lines.append("Stripe objects (newest known state):")
    for o in customer.stripe_objects.order_by("object_type", "object_id"):
        status = o.data.get("status") or o.data.get("payment_status") or ""
        lines.append(f"  {o.object_type:<20} {o.object_id:<32} {status:<10} as of event {o.version_event}")
    overrides = list(customer.overrides.order_by("pk"))
    if overrides:
        lines.append("")
        lines.append("Manual overrides:")
        for o in overrides:
            state = "removed" if o.removed_at else "expired" if not o.is_active(now) else "active"
            until = f" until {o.expires_at:%Y-%m-%d %H:%M} UTC" if o.expires_at else ""
            lines.append(f"  #{o.pk} {o.action} {o.name}{until} by {o.created_by} ({state}): {o.reason}")
    found = conflicts(customer, now)
    if found:
        lines.append("")
        lines.append("Conflicts:")
        lines += [f"  ! {c}" for c in found]
    lines.append("")
    lines.append("History:")
    for h in customer.entitlement_changes.order_by("pk"):
        lines.append(f"  {h.at:%Y-%m-%d %H:%M:%S} {h.name:<14} {h.before or '-':>9} → {h.after:<9} by {h.cause}"
                     f" (rules v{h.rules_version}){': ' + h.reason if h.reason else ''}")
    lines.append("")
    lines.append("Jobs:")
    for j in Job.objects.filter(customer=customer).order_by("pk"):
        extra = f" ({j.reason_code})" if j.reason_code else ""
        lines.append(f"  #{j.pk} {j.kind:<22} {j.state}{extra} after {j.attempts} attempt(s)")
    for account in customer.provider_accounts.order_by("provider"):
        applied = ", ".join(f"{k}={v}" for k, v in sorted(account.applied.items()) if v)
        lines.append(f"Applied in {account.provider}: {applied or 'nothing'}"
                     f"{' (id ' + account.external_id + ')' if account.external_id else ''}")
    return lines
