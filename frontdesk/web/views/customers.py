"""Customers: search, and one customer with everything behind their access, plus manual
overrides (grant, revoke, remove), which always need a reason."""

from __future__ import annotations

from datetime import UTC, datetime

from django.contrib import messages
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone

from frontdesk.customers.explain import explain
from frontdesk.customers.models import Customer, Entitlement, Override, StripeObjectVersion
from frontdesk.customers.recompute import conflicts
from frontdesk.ledger.models import Job
from frontdesk.ops import actions
from frontdesk.rules.models import RulesVersion
from frontdesk.web.decorators import action, actor, page
from frontdesk.web.forms import OverrideForm
from frontdesk.web.paging import clean, paginate


def search(query: str) -> QuerySet[Customer]:
    """By number, Stripe customer id (``cus_…``) or (part of) an e-mail address."""
    query = query.strip()
    customers = Customer.objects.all()
    if not query:
        return customers
    if query.isdigit():
        return customers.filter(pk=int(query))
    if query.startswith("cus_"):
        return customers.filter(stripe_customer_id=query)
    return customers.filter(Q(email__icontains=query.lower()) | Q(name__icontains=query))


@page("viewer")
def customer_list(request: HttpRequest) -> HttpResponse:
    filters = clean(request, "q")
    customers = search(filters.get("q", "")).annotate(
        active=Count("entitlements", filter=Q(entitlements__status=Entitlement.ACTIVE))).order_by("-pk")
    page = paginate(request, customers)
    if filters.get("q") and page.paginator.count == 1 and not request.GET.get("page"):
        return redirect("web-customer", pk=page.object_list[0].pk)
    return render(request, "web/customers.html", {"page": page, "filters": filters})


def _entitlement_names() -> list[str]:
    rules = RulesVersion.current()
    return sorted(rules.parsed["entitlements"]) if rules else []


def _timeline(customer: Customer) -> list[dict[str, object]]:
    """Every version of the customer's Stripe objects, oldest first."""
    rows = []
    versions = (StripeObjectVersion.objects.filter(obj__customer=customer)
                .select_related("obj").order_by("created", "rank", "pk")[:300])
    for v in versions:
        rows.append({"at": datetime.fromtimestamp(v.created, tz=UTC), "type": v.obj.object_type,
                     "id": v.obj.object_id, "status": v.status, "event": v.event_id,
                     "current": v.event_id == v.obj.version_event})
    return rows


def _plain(value: object) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in sorted(value.items()))
    if isinstance(value, list | tuple | set):
        return ", ".join(str(v) for v in value)
    return str(value)


@page("viewer")
def customer_detail(request: HttpRequest, pk: int) -> HttpResponse:
    customer = get_object_or_404(Customer, pk=pk)
    now = timezone.now()
    overrides = list(customer.overrides.order_by("-pk"))
    for o in overrides:
        o.active = o.is_active(now)  # type: ignore[attr-defined]
    names = _entitlement_names()
    accounts = list(customer.provider_accounts.order_by("provider"))
    for a in accounts:
        a.applied_lines = [f"{k}: {_plain(v)}" for k, v in sorted(a.applied.items()) if v]  # type: ignore[attr-defined]
    return render(request, "web/customer.html", {
        "customer": customer,
        "entitlements": customer.entitlements.select_related("rules_version").order_by("name", "source_id"),
        "stripe_objects": customer.stripe_objects.order_by("object_type", "object_id"),
        "timeline": _timeline(customer),
        "overrides": overrides,
        "history": customer.entitlement_changes.order_by("-pk")[:200],
        "jobs": Job.objects.filter(customer=customer).order_by("-pk")[:50],
        "job_count": Job.objects.filter(customer=customer).count(),
        "accounts": accounts,
        "conflicts": conflicts(customer, now),
        "explanation": "\n".join(explain(customer)),
        "form": OverrideForm(entitlements=names),
        "entitlement_names": names,
    })


@action("operator")
def customer_override(request: HttpRequest, pk: int) -> HttpResponse:
    customer = get_object_or_404(Customer, pk=pk)
    form = OverrideForm(request.POST, entitlements=_entitlement_names())
    if not form.is_valid():
        problems = "; ".join(f"{k}: {' '.join(v)}" for k, v in form.errors.items())
        messages.error(request, f"Nothing changed: {problems}")
        return redirect("web-customer", pk=customer.pk)
    do = actions.grant_access if form.cleaned_data["action"] == Override.GRANT else actions.revoke_access
    try:
        override = do(customer, form.cleaned_data["entitlement"], actor(request), form.cleaned_data["reason"],
                      form.expires_at())
    except actions.ActionError as exc:
        messages.error(request, f"Nothing changed: {exc}")
    else:
        messages.success(request, f"Override #{override.pk}: {override.action} {override.name}. "
                                  "Access is recomputed now and the providers are updated by the workers.")
    return redirect("web-customer", pk=customer.pk)


@action("operator")
def override_remove(request: HttpRequest, pk: int) -> HttpResponse:
    override = get_object_or_404(Override, pk=pk)
    try:
        actions.remove_override(override, actor(request), request.POST.get("reason", "").strip())
    except actions.ActionError as exc:
        messages.error(request, f"Nothing changed: {exc}")
    else:
        messages.success(request, f"Override #{override.pk} removed; access follows the payments again.")
    return redirect("web-customer", pk=override.customer_id)
