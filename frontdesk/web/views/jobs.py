"""The ledger: jobs with filters, one job with its attempts, and the actions on jobs."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from django.contrib import messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone

from frontdesk.intake.models import Event
from frontdesk.ledger.handlers import HANDLERS
from frontdesk.ledger.models import PENDING_STATES, Job, JobState
from frontdesk.ops import actions
from frontdesk.web.decorators import action, actor, page
from frontdesk.web.paging import clean, hours, paginate
from frontdesk.web.scrub import pretty_json, scrub

FILTERS = ("state", "provider", "kind", "reason", "customer", "event", "correlation", "failed_hours", "failed_reason")
FAILED_OUTCOMES = ("transient", "permanent", "paused")  # attempts that did not get through
WAITING = "waiting"  # queued or retrying, as one filter
# Every lane a job can be in (kinds' providers); constants, so the page needs no DISTINCT scan.
PROVIDERS = ("circle", "email", "hubspot", "kit", "slack", "stripe", "webhook")


def filter_jobs(params: QueryDict | dict[str, str]) -> QuerySet[Job]:
    """The job list's filters; the list, its counts and the bulk retry all use this."""
    jobs = Job.objects.all()
    state = params.get("state", "")
    if state == WAITING:
        jobs = jobs.filter(state__in=PENDING_STATES)
    elif state in JobState.values:
        jobs = jobs.filter(state=state)
    for name, field in (("provider", "provider"), ("kind", "kind"), ("reason", "reason_code"),
                        ("correlation", "correlation_id")):
        if params.get(name):
            jobs = jobs.filter(**{field: params[name]})
    for name in ("customer", "event"):
        value = params.get(name, "")
        if value.isdigit():
            jobs = jobs.filter(**{f"{name}_id": int(value)})
    window = hours(params.get("failed_hours"))
    if window:
        # Jobs with an attempt that failed in the window (and for this reason, if given).
        attempts: dict[str, Any] = {"attempt_rows__started_at__gte": timezone.now() - timedelta(hours=window),
                                    "attempt_rows__outcome__in": FAILED_OUTCOMES}
        if params.get("failed_reason"):
            attempts["attempt_rows__reason_code"] = params["failed_reason"]
        jobs = jobs.filter(pk__in=Job.objects.filter(**attempts).values("pk"))
    return jobs


@page("viewer")
def job_list(request: HttpRequest) -> HttpResponse:
    filters = clean(request, *FILTERS)
    jobs = filter_jobs(filters)
    page = paginate(request, jobs.select_related("customer").order_by("-pk"))
    retryable = jobs.filter(state__in=actions.RETRYABLE).count() if filters else 0
    return render(request, "web/jobs.html", {
        "page": page, "filters": filters, "retryable": retryable, "states": [*JobState.values, WAITING],
        "providers": PROVIDERS, "kinds": sorted(HANDLERS),
    })


@page("viewer")
def job_detail(request: HttpRequest, pk: int) -> HttpResponse:
    job = get_object_or_404(Job.objects.select_related("customer", "event"), pk=pk)
    attempts = list(job.attempt_rows.order_by("-number")[:100])
    for a in attempts:
        a.shown_message = scrub(a.message)  # type: ignore[attr-defined]
    event = job.event or (Event.objects.filter(correlation_id=job.correlation_id).order_by("pk").first()
                          if job.correlation_id else None)
    return render(request, "web/job.html", {
        "job": job, "event": event, "attempts": attempts, "last_error": scrub(job.last_error),
        "payload": pretty_json_obj(job.payload),
        "retryable": job.state in actions.RETRYABLE, "cancellable": job.state in actions.CANCELLABLE,
        "resolvable": job.state == JobState.NEEDS_REVIEW,
        "related": Job.objects.filter(correlation_id=job.correlation_id).exclude(pk=job.pk).order_by("pk")[:20]
        if job.correlation_id else [],
    })


def pretty_json_obj(value: Any) -> str:
    return pretty_json(json.dumps(value)) if value else ""


def _run(request: HttpRequest, pk: int, do: Any, done: str) -> HttpResponse:
    job = get_object_or_404(Job, pk=pk)
    reason = request.POST.get("reason", "").strip()
    try:
        do(job, actor(request), reason)
    except actions.ActionError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, done.format(pk=job.pk))
    return redirect("web-job", pk=job.pk)


@action("operator")
def job_retry(request: HttpRequest, pk: int) -> HttpResponse:
    return _run(request, pk, actions.retry_job, "Job {pk} is queued again; a worker runs it shortly.")


@action("operator")
def job_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    return _run(request, pk, actions.cancel_job, "Job {pk} is cancelled.")


@action("operator")
def job_resolve(request: HttpRequest, pk: int) -> HttpResponse:
    return _run(request, pk, actions.resolve_job, "Job {pk} is marked resolved by hand.")


@action("operator")
def jobs_retry(request: HttpRequest) -> HttpResponse:
    """Retry every retryable job of the list as filtered. The filters come as hidden
    ``filter-<name>`` fields, apart from the ``reason`` the person gives for the retry."""
    filters = {n: request.POST.get(f"filter-{n}", "").strip() for n in FILTERS
               if request.POST.get(f"filter-{n}", "").strip()}
    query = QueryDict(mutable=True)
    query.update(filters)
    back = reverse("web-jobs") + (f"?{query.urlencode()}" if filters else "")
    if not filters:
        messages.error(request, "Filter the list first: bulk retry acts on a filtered selection only.")
        return redirect(back)
    count = actions.retry_jobs(filter_jobs(filters), actor(request), request.POST.get("reason", "").strip())
    messages.success(request, f"{count} job{'s' if count != 1 else ''} queued again.")
    return redirect(back)
