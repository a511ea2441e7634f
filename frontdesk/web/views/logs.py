"""The intake log (every webhook request) and the audit log (every change by a person or a
deploy)."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone

from frontdesk.audit.models import AuditEntry
from frontdesk.intake.models import IntakeLog
from frontdesk.web.paging import clean, hours, paginate
from frontdesk.web.decorators import page


@page("viewer")
def intake_log(request: HttpRequest) -> HttpResponse:
    filters = clean(request, "outcome", "reason", "provider", "event", "since_hours")
    rows = IntakeLog.objects.all()
    if filters.get("outcome") == "accepted":
        rows = rows.filter(status_code=200)
    elif filters.get("outcome") == "rejected":
        rows = rows.exclude(status_code=200)
    if filters.get("reason"):
        rows = rows.filter(reason=filters["reason"])
    if filters.get("provider"):
        rows = rows.filter(provider=filters["provider"])
    if filters.get("event"):
        rows = rows.filter(event_id=filters["event"])
    if window := hours(filters.get("since_hours")):
        rows = rows.filter(received_at__gte=timezone.now() - timedelta(hours=window))
    return render(request, "web/intake.html", {
        "page": paginate(request, rows.order_by("-received_at", "-pk")), "filters": filters,
    })


TARGETS = {"customer": "web-customer", "job": "web-job"}


def target_link(target: str) -> str:
    """The page of an audit entry's target (``customer:12``, ``job:7``, ``event:evt_…``,
    ``rules:v3``), or "" when it has none."""
    kind, _, ident = target.partition(":")
    if kind in ("customer", "job") and ident.isdigit():
        return reverse(TARGETS[kind], args=[int(ident)])  # type: ignore[arg-type]
    if kind == "event" and ident:
        return reverse("web-events") + "?" + urlencode({"q": ident})
    if kind == "rules" and ident.startswith("v") and ident[1:].isdigit():
        return reverse("web-rules-version", args=[int(ident[1:])])
    return ""


@page("viewer")
def audit_log(request: HttpRequest) -> HttpResponse:
    filters = clean(request, "actor", "action", "target")
    rows = AuditEntry.objects.all()
    if filters.get("actor"):
        rows = rows.filter(actor=filters["actor"])
    if filters.get("action"):
        rows = rows.filter(action=filters["action"])
    if filters.get("target"):
        rows = rows.filter(target=filters["target"])
    page = paginate(request, rows.order_by("-at", "-pk"))
    for entry in page:
        entry.href = target_link(entry.target)  # type: ignore[attr-defined]
    return render(request, "web/audit.html", {
        "page": page, "filters": filters,
        "actions": sorted(AuditEntry.objects.values_list("action", flat=True).distinct()[:200]),
        "actors": sorted(AuditEntry.objects.values_list("actor", flat=True).distinct()[:200]),
    })
