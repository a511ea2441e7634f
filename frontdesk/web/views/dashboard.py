"""The first screen: what broke, who was affected, what happens next. Every number links to
the list behind it; every problem says what happens next."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone

from frontdesk.alerts.models import Alert
from frontdesk.alerts.rules import SIGNATURE_REASONS
from frontdesk.customers.models import Customer, Override
from frontdesk.customers.recompute import conflicts
from frontdesk.intake.models import IntakeLog
from frontdesk.ledger.enqueue import sync_providers
from frontdesk.ledger.models import PENDING_STATES, Attempt, Job, JobState, ProviderState, WorkerHeartbeat
from frontdesk.web.decorators import page
from frontdesk.web.scrub import scrub
from frontdesk.web.states import LANE_LABELS, LANE_WORDS, reason_text
from frontdesk.web.views.jobs import FAILED_OUTCOMES, WAITING

INTAKE_PROVIDERS = ("stripe",)
QUIET_HOURS = 6  # no verified event for this long is worth a look (the no_events alert's default)
MAX_OVERRIDE_CUSTOMERS = 100  # customers with active overrides checked for conflicts per page view


def link(name: str, **params: Any) -> str:
    query = urlencode({k: v for k, v in params.items() if v not in (None, "")})
    return reverse(name) + (f"?{query}" if query else "")


@dataclass
class Row:
    label: str
    count: int
    href: str
    next: str = ""


def intake(now: datetime) -> dict[str, Any]:
    since = now - timedelta(hours=24)
    providers = []
    for provider in INTAKE_PROVIDERS:
        accepted = IntakeLog.objects.filter(provider=provider, status_code=200)
        last = accepted.order_by("-received_at").values_list("received_at", flat=True).first()
        count = accepted.filter(received_at__gte=since).count()
        if last is None:
            next_ = "No event has ever been verified: add the endpoint in Stripe and set STRIPE_WEBHOOK_SECRET."
        elif last < now - timedelta(hours=QUIET_HOURS):
            next_ = ("Quiet for a while: check the endpoint in Stripe's dashboard (disabled, or failing?). "
                     "Stripe retries failed deliveries for 3 days.")
        else:
            next_ = ""
        providers.append({"provider": provider, "last": last, "count": count, "next": next_,
                          "href": link("web-intake", provider=provider, outcome="accepted", since_hours=24)})
    rejected = []
    for row in (IntakeLog.objects.filter(received_at__gte=since).exclude(status_code=200)
                .values("reason").annotate(n=Count("pk")).order_by("-n")):
        reason = row["reason"]
        if reason in SIGNATURE_REASONS:
            next_ = ("Stripe keeps retrying these. Many at once usually mean a rotated webhook secret: "
                     "set STRIPE_WEBHOOK_SECRET to the endpoint's current whsec_ value.")
        elif reason == "database_unavailable":
            next_ = "Nothing was stored; Stripe retries. Check the database."
        else:
            next_ = "Not from Stripe, or not an event frontdesk can use; nothing to do unless Stripe shows failures."
        rejected.append(Row(reason, row["n"], link("web-intake", outcome="rejected", reason=reason, since_hours=24), next_))
    return {"providers": providers, "rejected": rejected}


def failures(now: datetime) -> list[Row]:
    """Jobs with an attempt that failed in the last 24 h, by provider and reason code."""
    rows = (Attempt.objects.filter(started_at__gte=now - timedelta(hours=24), outcome__in=FAILED_OUTCOMES)
            .values("job__provider", "reason_code").annotate(n=Count("job", distinct=True))
            .order_by("-n", "job__provider"))
    out = []
    for r in rows:
        provider, reason = r["job__provider"], r["reason_code"]
        out.append(Row(f"{provider} · {reason or 'no reason'}", r["n"],
                       link("web-jobs", provider=provider, failed_hours=24, failed_reason=reason),
                       reason_text(reason) or "Temporary failures retry by themselves with backoff; "
                                              "after the retry deadline the job goes to review."))
    return out


def review(now: datetime) -> list[Row]:
    rows = Job.objects.needs_review().values("reason_code").annotate(n=Count("pk")).order_by("-n")
    return [Row(r["reason_code"] or "no reason", r["n"],
                link("web-jobs", state=JobState.NEEDS_REVIEW, reason=r["reason_code"]),
                reason_text(r["reason_code"]) or "Waits for a person: fix the cause, then retry, resolve or cancel.")
            for r in rows]


def provider_health(now: datetime) -> list[dict[str, Any]]:
    states = {s.provider: s for s in ProviderState.objects.all()}
    waiting = dict(Job.objects.filter(state__in=PENDING_STATES).values_list("provider").annotate(n=Count("pk")))
    names = sorted({"stripe", *sync_providers(), *states})
    out = []
    for name in names:
        s = states.get(name)
        blocked = s is not None and s.status != ProviderState.OK and bool(s.blocked_until and s.blocked_until > now)
        status = s.status if blocked and s else ProviderState.OK
        if not blocked:
            next_ = ""
        elif status == ProviderState.PAUSED:
            next_ = (f"Replace the {name} token or key and restart; one job probes again every few minutes and "
                     "delivery resumes by itself. The Doctor checks the credentials.")
        elif status == ProviderState.CIRCUIT_OPEN:
            next_ = "After the cooldown one job probes; success closes the circuit and the waiting jobs resume."
        else:
            next_ = "The provider asked us to slow down; its jobs resume by themselves after the wait."
        out.append({"provider": name, "status": status, "label": LANE_LABELS.get(status, "ok"), "words": LANE_WORDS.get(status, "ok"),
                    "state": s, "blocked": blocked, "message": scrub(s.message) if blocked and s else "",
                    "waiting": waiting.get(name, 0), "next": next_,
                    "href": link("web-jobs", provider=name, state=WAITING)})
    return out


def queue(now: datetime) -> dict[str, Any]:
    pending = Job.objects.filter(state__in=PENDING_STATES)
    due = pending.filter(run_at__lte=now)
    oldest = due.order_by("run_at", "pk").first()
    workers = WorkerHeartbeat.objects.filter(seen_at__gte=now - timedelta(minutes=1)).count()
    return {
        "waiting": pending.count(), "due": due.count(), "oldest": oldest,
        "oldest_age": (now - oldest.run_at).total_seconds() if oldest else 0,
        "running": Job.objects.running().count(), "workers": workers,
        "href": link("web-jobs", state=WAITING), "running_href": link("web-jobs", state=JobState.RUNNING),
        "next": "" if workers else "No worker has been seen in the last minute: nothing runs until one starts "
                                   "(`frontdesk worker`).",
    }


ALERT_LINKS = {
    "failed_jobs": ("web-jobs", {"failed_hours": 1}),
    "review_queue": ("web-jobs", {"state": JobState.NEEDS_REVIEW}),
    "queue_backlog": ("web-jobs", {"state": WAITING}),
    "rejected_signatures": ("web-intake", {"outcome": "rejected", "since_hours": 1}),
    "no_events": ("web-intake", {"outcome": "accepted"}),
}


def alerts() -> list[dict[str, Any]]:
    out = []
    for a in Alert.objects.filter(status=Alert.FIRING).order_by("-started_at")[:50]:
        name, params = ALERT_LINKS.get(a.rule, ("web-jobs", {}))
        if a.rule == "provider_blocked":
            params = {"provider": a.key.partition(":")[2], "state": WAITING}
        out.append({"alert": a, "href": link(name, **params)})
    return out


def conflict_rows(now: datetime) -> tuple[list[dict[str, Any]], int]:
    """Customers with an active override whose payments say otherwise (bounded)."""
    active = Override.objects.filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now), removed_at__isnull=True)
    ids = list(active.order_by("-customer_id").values_list("customer_id", flat=True).distinct()[:MAX_OVERRIDE_CUSTOMERS])
    rows = []
    for customer in Customer.objects.filter(pk__in=ids).order_by("-pk"):
        found = conflicts(customer, now)
        if found:
            rows.append({"customer": customer, "conflicts": found,
                         "href": reverse("web-customer", args=[customer.pk])})
    return rows, len(ids)


@page("viewer")
def dashboard(request: HttpRequest) -> HttpResponse:
    now = timezone.now()
    conflicts_found, checked = conflict_rows(now)
    return render(request, "web/dashboard.html", {
        "now": now, "intake": intake(now), "failures": failures(now), "review": review(now),
        "review_total": Job.objects.needs_review().count(),
        "review_href": link("web-jobs", state=JobState.NEEDS_REVIEW),
        "providers": provider_health(now), "queue": queue(now), "alerts": alerts(),
        "conflicts": conflicts_found, "override_customers": checked, "conflict_limit": MAX_OVERRIDE_CUSTOMERS,
    })
