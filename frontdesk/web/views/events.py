"""Stored events: the list, one event with its payload and the jobs it caused, replaying one,
and sending a signed test event whose progress the page follows until every job is final."""

from __future__ import annotations

import json
import uuid

from django.conf import settings
from django.contrib import messages
from django.db.models import Count, OuterRef, Q, QuerySet, Subquery
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone

from frontdesk.audit.models import record
from frontdesk.customers.explain import find
from frontdesk.intake import samples, signature, storage
from frontdesk.intake.models import Event
from frontdesk.intake.processing import HANDLED_TYPES
from frontdesk.ledger.models import FINAL_STATES, Job, JobState
from frontdesk.ops import actions
from frontdesk.rules.models import RulesVersion
from frontdesk.web.decorators import action, actor, form_page, page
from frontdesk.web.forms import TestEventForm
from frontdesk.web.paging import clean, day, paginate
from frontdesk.web.scrub import pretty_json

FILTERS = ("q", "type", "status", "customer", "since", "until")


def filter_events(params: dict[str, str]) -> QuerySet[Event]:
    events = Event.objects.all()
    if params.get("q"):
        events = events.filter(Q(event_id=params["q"]) | Q(correlation_id=params["q"]))
    if params.get("type"):
        events = events.filter(type=params["type"])
    if params.get("status"):
        events = events.filter(status=params["status"])
    if params.get("customer"):
        customer = find(params["customer"])
        events = events.filter(customer=customer) if customer else events.none()
    if since := day(params.get("since")):
        events = events.filter(received_at__gte=since)
    if until := day(params.get("until"), end=True):
        events = events.filter(received_at__lt=until)
    return events


@page("viewer")
def event_list(request: HttpRequest) -> HttpResponse:
    filters = clean(request, *FILTERS)
    # Jobs of an event share its correlation id: its processing, the syncs that queued, replays.
    jobs = (Job.objects.filter(correlation_id=OuterRef("correlation_id")).order_by()
            .values("correlation_id").annotate(n=Count("pk")).values("n"))
    events = (filter_events(filters).select_related("customer").annotate(job_count=Subquery(jobs))
              .order_by("-received_at", "-pk"))
    return render(request, "web/events.html", {
        "page": paginate(request, events), "filters": filters,
        "types": sorted(HANDLED_TYPES),
        "statuses": [s for s, _ in Event.STATUSES],
    })


def caused_jobs(event: Event) -> QuerySet[Job]:
    """The processing job(s) of the event and the syncs they queued (same correlation id)."""
    return Job.objects.filter(Q(event=event) | Q(correlation_id=event.correlation_id)).order_by("pk")


@page("viewer")
def event_detail(request: HttpRequest, pk: int) -> HttpResponse:
    event = get_object_or_404(Event.objects.select_related("customer"), pk=pk)
    return render(request, "web/event.html", {
        "event": event, "payload": pretty_json(event.payload) if event.payload else "",
        "jobs": caused_jobs(event).select_related("customer")[:100],
    })


@action("operator")
def event_replay(request: HttpRequest, pk: int) -> HttpResponse:
    event = get_object_or_404(Event, pk=pk)
    try:
        job = actions.replay_event(event, actor(request), request.POST.get("reason", "").strip())
    except actions.ActionError as exc:
        messages.error(request, str(exc))
        return redirect("web-event", pk=event.pk)
    messages.success(request, f"Replay queued as job {job.pk}; effects stay idempotent.")
    return redirect("web-event-progress", pk=event.pk)


def _prices() -> list[str]:
    rules = RulesVersion.current()
    return [m["value"] for m in (rules.parsed["mappings"] if rules else []) if m.get("match") == "price"]


@form_page("operator")
def test_event(request: HttpRequest) -> HttpResponse:
    """Build a signed checkout.session.completed and store it as the webhook would, without
    going over HTTP. It writes no intake log row, so the doctor's "the webhook secret verified
    an event" stays about real deliveries."""
    prices = _prices()
    form = TestEventForm(request.POST or None, prices=prices)
    if request.method == "POST" and form.is_valid():
        if not settings.STRIPE_WEBHOOK_SECRETS:
            messages.error(request, "STRIPE_WEBHOOK_SECRET is not set: real events would be refused too.")
            return redirect("web-test-event")
        email, price = form.cleaned_data["email"], form.cleaned_data["price"]
        session = samples.checkout_session(email, price)
        data = samples.event("checkout.session.completed", session)
        body = json.dumps(data).encode()
        # Signed and verified like a delivery: proves the configured secret round-trips.
        signature.verify(body, signature.header(body, settings.STRIPE_WEBHOOK_SECRETS[:1]),
                         settings.STRIPE_WEBHOOK_SECRETS, settings.WEBHOOK_TOLERANCE_SECONDS)
        outcome = storage.store(data, body.decode(), timezone.now(), uuid.uuid4().hex)
        event = Event.objects.get(provider="stripe", event_id=data["id"])
        record(actor(request), "test_event_sent", f"event:{event.event_id}",
               after={"price": price, "outcome": outcome})
        return redirect("web-event-progress", pk=event.pk)
    return render(request, "web/test_event.html", {"form": form, "prices": prices})


def _steps(event: Event) -> tuple[list[dict[str, object]], bool]:
    jobs = list(caused_jobs(event).select_related("customer"))
    processing = [j for j in jobs if j.kind == "stripe.process_event"]
    syncs = [j for j in jobs if j.kind != "stripe.process_event"]
    stored = {"title": "Event stored", "done": True,
              "text": f"{event.type} {event.event_id} stored {event.received_at:%H:%M:%S} UTC; status {event.status}"
                      f"{' (' + event.status_reason + ')' if event.status_reason else ''}."}
    steps: list[dict[str, object]] = [stored]
    if event.status == Event.IGNORED:
        return steps, True
    steps.append({"title": "Processing job", "jobs": processing, "done": bool(processing) and all(
        j.state in FINAL_STATES or j.state == JobState.NEEDS_REVIEW for j in processing)})
    processed = steps[-1]["done"]
    steps.append({"title": "Sync jobs", "jobs": syncs,
                  "text": "" if syncs or not processed else "No sync was needed: access did not change.",
                  "done": processed and all(j.state in FINAL_STATES or j.state == JobState.NEEDS_REVIEW for j in syncs)})
    final = all(bool(s["done"]) for s in steps)
    return steps, final


@page("viewer")
def event_progress(request: HttpRequest, pk: int) -> HttpResponse:
    """Each step of an event's way through frontdesk. The page polls itself with htmx until
    every job is final (succeeded, cancelled or waiting for review)."""
    event = get_object_or_404(Event, pk=pk)
    steps, final = _steps(event)
    context = {"event": event, "steps": steps, "final": final}
    if request.headers.get("HX-Request"):
        return render(request, "web/_progress.html", context)
    return render(request, "web/progress.html", context)
