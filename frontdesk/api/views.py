"""The API's endpoints. Reads serialize models; actions go through frontdesk.ops.actions, the
same functions the screens and commands use, so checks and audit entries are identical."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, Max, Min, Model, Prefetch, QuerySet
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from frontdesk.alerts.models import Alert
from frontdesk.api.auth import Call, api_view
from frontdesk.api.schemas import page_of, ref
from frontdesk.api.spec import ID_MAX, ApiError, Field, bad_request
from frontdesk.audit.models import record
from frontdesk.customers.explain import explain
from frontdesk.customers.models import Customer, Entitlement, Override
from frontdesk.customers.recompute import conflicts
from frontdesk.intake.models import Event, IntakeLog
from frontdesk.ledger.models import PENDING_STATES, Attempt, Job, JobState, ProviderState, WorkerHeartbeat
from frontdesk.ops import actions
from frontdesk.redact import SECRET_RE, redact
from frontdesk.rules.loading import load_text
from frontdesk.rules.models import RulesVersion
from frontdesk.rules.preview import apply, effects, semantic_diff, text_diff
from frontdesk.rules.schema import RulesError, parse

AFFECTED_SHOWN = 500
WORKER_FRESH = timedelta(minutes=1)

# --- Shared parameters ------------------------------------------------------------------------
LIMIT = Field("limit", "integer", "Items per page (1–100).", minimum=1, maximum=100, default=50)
CURSOR = Field("cursor", "string", "The `next_cursor` of the previous page.", max_length=18, pattern=r"^[0-9]{1,18}$")
PAGE = (LIMIT, CURSOR)
REASON = Field("reason", "string", "Why, for the audit log.", max_length=2000, default="")
REASON_REQUIRED = Field("reason", "string", "Why, for the audit log and whoever looks next.", required=True,
                        max_length=2000)
JOB_FILTERS = (
    Field("state", "string", "Job state.", enum=tuple(JobState.values)),
    Field("provider", "string", "circle, kit, stripe, hubspot, slack, email, webhook.", max_length=20),
    Field("reason", "string", "Reason code, e.g. kit_invalid_email.", max_length=60),
    Field("kind", "string", "Job kind, e.g. kit.sync.", max_length=50),
)


def iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def _not_found(what: str) -> ApiError:
    return ApiError(404, "not_found", f"no {what}")


def _get(model: type[Model], pk: int, what: str, qs: QuerySet[Any] | None = None) -> Any:
    found = (qs if qs is not None else model.objects.all()).filter(pk=pk).first() if pk <= ID_MAX else None
    if found is None:
        raise _not_found(f"{what} {pk}")
    return found


def page(qs: QuerySet[Any], call: Call, serialize: Callable[[Any], dict[str, Any]]) -> JsonResponse:
    """Newest first, ``limit`` at a time; ``next_cursor`` is the last id, so pages stay stable
    while new rows arrive."""
    limit, cursor = call.query["limit"], call.query["cursor"]
    if cursor:
        qs = qs.filter(pk__lt=int(cursor))
    rows = list(qs.order_by("-pk")[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    return JsonResponse({"items": [serialize(r) for r in rows], "next_cursor": str(rows[-1].pk) if more else None})


def _scrub(value: Any) -> Any:
    """Job payloads hold no secrets by design; this keeps it so if one ever slipped in."""
    if isinstance(value, dict):
        return {k: _scrub(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    if isinstance(value, str):
        return SECRET_RE.sub("[redacted]", value)
    return value


# --- Serializers ------------------------------------------------------------------------------
def event_dict(e: Event) -> dict[str, Any]:
    return {"id": e.pk, "event_id": e.event_id, "provider": e.provider, "type": e.type, "status": e.status,
            "status_reason": e.status_reason, "livemode": e.livemode, "created": iso(e.created),
            "received_at": iso(e.received_at), "processed_at": iso(e.processed_at), "customer_id": e.customer_id,
            "correlation_id": e.correlation_id}


def job_dict(j: Job) -> dict[str, Any]:
    return {"id": j.pk, "kind": j.kind, "provider": j.provider, "state": j.state, "reason_code": j.reason_code,
            "attempts": j.attempts, "priority": j.priority, "customer_id": j.customer_id,
            "event_id": j.event.event_id if j.event_id else None,
            "run_at": iso(j.run_at), "deadline": iso(j.deadline), "created_at": iso(j.created_at),
            "updated_at": iso(j.updated_at), "finished_at": iso(j.finished_at), "correlation_id": j.correlation_id,
            "last_error": redact(j.last_error, limit=2000)}


def attempt_dict(a: Attempt) -> dict[str, Any]:
    return {"number": a.number, "worker": a.worker, "started_at": iso(a.started_at), "duration_ms": a.duration_ms,
            "outcome": a.outcome, "http_status": a.http_status, "reason_code": a.reason_code,
            "message": redact(a.message, limit=2000)}


def customer_dict(c: Customer) -> dict[str, Any]:
    return {"id": c.pk, "email": c.email, "name": c.name, "stripe_customer_id": c.stripe_customer_id,
            "created_at": iso(c.created_at), "updated_at": iso(c.updated_at),
            "access": sorted({e.name for e in c.entitlements.all() if e.status == Entitlement.ACTIVE})}


def override_dict(o: Override, now: datetime | None = None) -> dict[str, Any]:
    now = now or timezone.now()
    state = "removed" if o.removed_at else "active" if o.is_active(now) else "expired"
    return {"id": o.pk, "customer_id": o.customer_id, "entitlement": o.name, "action": o.action, "reason": o.reason,
            "expires_at": iso(o.expires_at), "created_by": o.created_by, "created_at": iso(o.created_at),
            "removed_at": iso(o.removed_at), "removed_by": o.removed_by, "state": state}


def rules_dict(v: RulesVersion) -> dict[str, Any]:
    return {"number": v.number, "content_hash": v.content_hash, "source": v.source, "loaded_by": v.loaded_by,
            "loaded_at": iso(v.loaded_at)}


def _jobs() -> QuerySet[Job]:
    return Job.objects.select_related("event")


# --- Events -----------------------------------------------------------------------------------
@api_view("viewer", ["GET"], summary="List stored events, newest first", tag="events", query=(
    Field("type", "string", "Event type, e.g. checkout.session.completed.", max_length=100),
    Field("status", "string", "Processing status.", enum=tuple(s for s, _ in Event.STATUSES)),
    Field("provider", "string", "Provider, e.g. stripe.", max_length=20),
    Field("customer", "integer", "Customer id.", minimum=1, maximum=ID_MAX),
    Field("since", "date-time", "Received at or after."),
    Field("until", "date-time", "Received before."),
    *PAGE), response=page_of("Event"))
def events(request: HttpRequest, call: Call) -> JsonResponse:
    q = call.query
    qs = Event.objects.all()
    for param, lookup in (("type", "type"), ("status", "status"), ("provider", "provider"),
                          ("customer", "customer_id"), ("since", "received_at__gte"), ("until", "received_at__lt")):
        if q[param] is not None:
            qs = qs.filter(**{lookup: q[param]})
    return page(qs, call, event_dict)


def _event(event_id: str) -> Event:
    event = Event.objects.filter(event_id=event_id).order_by("pk").first()
    if event is None:
        raise _not_found(f"stored event {event_id}")
    return event


@api_view("viewer", ["GET"], summary="One event, with its payload and jobs", tag="events", response=ref("EventDetail"))
def event(request: HttpRequest, call: Call, event_id: str) -> JsonResponse:
    e = _event(event_id)
    try:
        payload = json.loads(e.payload) if e.payload else None
    except ValueError:
        payload = None
    return JsonResponse({**event_dict(e), "payload": payload if isinstance(payload, dict) else None,
                         "jobs": [job_dict(j) for j in _jobs().filter(event=e).order_by("pk")]})


@api_view("operator", ["POST"], summary="Run an event's processing again", tag="events", conflict=True,
          body=(REASON,), body_required=False, response=ref("Job"), statuses=(202,),
          description="Queues a new `stripe.process_event` job. Syncs converge, so a replay changes "
                      "nothing in Circle or Kit unless their state differs from what frontdesk expects.")
def replay_event(request: HttpRequest, call: Call, event_id: str) -> JsonResponse:
    job = actions.replay_event(_event(event_id), call.actor, call.body["reason"])
    return JsonResponse(job_dict(_jobs().get(pk=job.pk)), status=202)


# --- Jobs -------------------------------------------------------------------------------------
def _filter_jobs(q: dict[str, Any]) -> QuerySet[Job]:
    qs = _jobs()
    for param, lookup in (("state", "state"), ("provider", "provider"), ("reason", "reason_code"),
                          ("kind", "kind"), ("customer", "customer_id")):
        if q.get(param) is not None:
            qs = qs.filter(**{lookup: q[param]})
    return qs


@api_view("viewer", ["GET"], summary="List jobs, newest first", tag="jobs",
          query=(*JOB_FILTERS, Field("customer", "integer", "Customer id.", minimum=1, maximum=ID_MAX), *PAGE),
          response=page_of("Job"))
def jobs(request: HttpRequest, call: Call) -> JsonResponse:
    return page(_filter_jobs(call.query), call, job_dict)


@api_view("viewer", ["GET"], summary="One job, with its attempts", tag="jobs", response=ref("JobDetail"))
def job(request: HttpRequest, call: Call, job_id: int) -> JsonResponse:
    j = _get(Job, job_id, "job", _jobs())
    return JsonResponse({**job_dict(j), "payload": _scrub(j.payload),
                         "attempt_history": [attempt_dict(a) for a in j.attempt_rows.order_by("number")]})


def _job_action(action: Callable[..., Job], job_id: int, call: Call) -> JsonResponse:
    j = _get(Job, job_id, "job")
    action(j, call.actor, call.body["reason"])
    return JsonResponse(job_dict(_jobs().get(pk=j.pk)))


@api_view("operator", ["POST"], summary="Run a job again now", tag="jobs", conflict=True, body=(REASON,),
          body_required=False, response=ref("Job"),
          description="For jobs that are queued, retrying, cancelled or need review; gives a fresh retry deadline.")
def retry_job(request: HttpRequest, call: Call, job_id: int) -> JsonResponse:
    return _job_action(actions.retry_job, job_id, call)


def _reason_given(call: Call) -> None:
    if not call.body["reason"].strip():
        raise bad_request("field 'reason' must say why: whoever looks at this job next will need to know")


@api_view("operator", ["POST"], summary="Cancel a job", tag="jobs", conflict=True, body=(REASON_REQUIRED,),
          response=ref("Job"), description="For jobs that are queued, retrying or need review.")
def cancel_job(request: HttpRequest, call: Call, job_id: int) -> JsonResponse:
    _reason_given(call)
    return _job_action(actions.cancel_job, job_id, call)


@api_view("operator", ["POST"], summary="Mark a job in review as handled by hand", tag="jobs", conflict=True,
          body=(REASON_REQUIRED,), response=ref("Job"))
def resolve_job(request: HttpRequest, call: Call, job_id: int) -> JsonResponse:
    _reason_given(call)
    return _job_action(actions.resolve_job, job_id, call)


@api_view("operator", ["POST"], summary="Run again every job matching the filters", tag="jobs",
          query=JOB_FILTERS, body=(REASON,), body_required=False, response=ref("BulkRetry"),
          description="Filters are the query parameters of `GET /jobs` (at least one is required). Only "
                      "jobs that are not running or done are retried, at most 1000 at once.")
def retry_jobs(request: HttpRequest, call: Call) -> JsonResponse:
    if all(call.query[f.name] is None for f in JOB_FILTERS):
        raise bad_request("give at least one filter (state, provider, reason or kind)")
    count = actions.retry_jobs(_filter_jobs(call.query), call.actor, call.body["reason"])
    return JsonResponse({"retried": count})


# --- Customers and overrides ------------------------------------------------------------------
def _customers() -> QuerySet[Customer]:
    return Customer.objects.prefetch_related(
        Prefetch("entitlements", queryset=Entitlement.objects.filter(status=Entitlement.ACTIVE)))


@api_view("viewer", ["GET"], summary="Find customers", tag="customers", query=(
    Field("q", "string", "An e-mail (or part of one), a Stripe customer id (cus_…) or a customer number.",
          max_length=320), *PAGE), response=page_of("Customer"))
def customers(request: HttpRequest, call: Call) -> JsonResponse:
    qs = _customers()
    q = (call.query["q"] or "").strip()
    if q.isascii() and q.isdigit():
        qs = qs.filter(pk=int(q)) if int(q) <= ID_MAX else qs.none()
    elif q.startswith("cus_"):
        qs = qs.filter(stripe_customer_id=q)
    elif q:
        qs = qs.filter(email__contains=q.lower())
    return page(qs, call, customer_dict)


@api_view("viewer", ["GET"], summary="Everything about one customer's access", tag="customers",
          response=ref("CustomerDetail"))
def customer(request: HttpRequest, call: Call, customer_id: int) -> JsonResponse:
    c = _get(Customer, customer_id, "customer")
    now = timezone.now()
    entitlements = c.entitlements.select_related("rules_version").order_by("name", "source_id")
    return JsonResponse({
        **customer_dict(c),
        "entitlements": [{"name": e.name, "status": e.status, "source_type": e.source_type, "source_id": e.source_id,
                          "expires_at": iso(e.expires_at), "reason": e.reason, "rules_version": e.rules_version.number,
                          "event_id": e.event_id, "granted_at": iso(e.granted_at), "updated_at": iso(e.updated_at)}
                         for e in entitlements],
        "overrides": [override_dict(o, now) for o in c.overrides.order_by("pk")],
        "history": [{"at": iso(h.at), "entitlement": h.name, "source_id": h.source_id, "before": h.before,
                     "after": h.after, "before_expires": iso(h.before_expires), "after_expires": iso(h.after_expires),
                     "cause": h.cause, "rules_version": h.rules_version, "reason": h.reason}
                    for h in c.entitlement_changes.order_by("pk")],
        "stripe_objects": [{"object_type": o.object_type, "object_id": o.object_id,
                            "status": str(o.data.get("status") or o.data.get("payment_status") or ""),
                            "version_event": o.version_event, "updated_at": iso(o.updated_at)}
                           for o in c.stripe_objects.order_by("object_type", "object_id")],
        "conflicts": conflicts(c, now),
        "explain": explain(c),
        "providers": [{"provider": a.provider, "external_id": a.external_id, "synced_at": iso(a.synced_at),
                       "applied": _scrub(a.applied)} for a in c.provider_accounts.order_by("provider")],
        "jobs": [job_dict(j) for j in _jobs().filter(customer=c).order_by("-pk")[:20]],
    })


@api_view("operator", ["POST"], summary="Grant or revoke access by hand", tag="customers", conflict=True, body=(
    Field("action", "string", "grant: access whatever the payments say; revoke: none whatever they say.",
          required=True, enum=("grant", "revoke")),
    Field("entitlement", "string", "An entitlement name from the current rules.", required=True, max_length=100,
          example="community"),
    REASON_REQUIRED,
    Field("expires_at", "date-time", "When the override ends (UTC offset required); omit or null for never.",
          nullable=True),
), response=ref("Override"), statuses=(201,))
def create_override(request: HttpRequest, call: Call, customer_id: int) -> JsonResponse:
    c = _get(Customer, customer_id, "customer")
    b = call.body
    rules = RulesVersion.current()
    if rules is None or b["entitlement"] not in rules.parsed["entitlements"]:
        known = ", ".join(sorted(rules.parsed["entitlements"])) if rules else "none: load rules first"
        raise bad_request(f"'{b['entitlement']}' is not an entitlement in the current rules (known: {known})")
    if not b["reason"].strip():
        raise bad_request("field 'reason' must say why: it is shown to whoever looks at this customer next")
    if b["expires_at"] is not None and b["expires_at"] <= timezone.now():
        raise bad_request("field 'expires_at' is in the past")
    act = actions.grant_access if b["action"] == "grant" else actions.revoke_access
    override = act(c, b["entitlement"], call.actor, b["reason"], b["expires_at"])
    return JsonResponse(override_dict(override), status=201)


@api_view("operator", ["DELETE"], summary="Remove an override", tag="customers", conflict=True,
          query=(Field("reason", "string", "Why (or give it in the body).", max_length=2000),),
          body=(Field("reason", "string", "Why (or give it as a query parameter).", max_length=2000),),
          body_required=False, response=ref("Override"),
          description="The customer's access is recomputed at once. Needs a reason, in the body or the query.")
def remove_override(request: HttpRequest, call: Call, override_id: int) -> JsonResponse:
    o = _get(Override, override_id, "override")
    reason = call.body.get("reason") or call.query["reason"] or ""
    if not reason.strip():
        raise bad_request("give a 'reason' (in the body or the query): why is the override removed?")
    actions.remove_override(o, call.actor, reason)
    o.refresh_from_db()
    return JsonResponse(override_dict(o))


# --- Rules ------------------------------------------------------------------------------------
CONTENT = Field("content", "string", "The rules file (YAML), as in docs/rules.md.", required=True, max_length=100_000)


def _parse(content: str) -> dict[str, Any]:
    try:
        return parse(content, "api")
    except RulesError as exc:
        raise ApiError(400, "invalid_rules", "the rules are not valid",
                       problems=[{"line": p.line, "message": p.message} for p in exc.problems]) from None


@api_view("viewer", ["GET"], summary="List rules versions, newest first", tag="rules", query=PAGE,
          response=page_of("RulesVersion"))
def rules_versions(request: HttpRequest, call: Call) -> JsonResponse:
    return page(RulesVersion.objects.all(), call, rules_dict)


@api_view("viewer", ["GET"], summary="The current rules", tag="rules", response=ref("RulesCurrent"), errors=(404,),
          description="404 until a rules file has been loaded.")
def rules_current(request: HttpRequest, call: Call) -> JsonResponse:
    v = RulesVersion.current()
    if v is None:
        raise _not_found("rules loaded yet: load a rules file first")
    return JsonResponse({**rules_dict(v), "content": v.content, "parsed": v.parsed})


@api_view("admin", ["POST"], summary="What loading these rules would change", tag="rules", body=(CONTENT,),
          response=ref("RulesPreview"), description="Nothing is stored or applied. Invalid rules answer 400 "
          "with line-numbered `problems`.")
def rules_preview(request: HttpRequest, call: Call) -> JsonResponse:
    new = _parse(call.body["content"])
    current = RulesVersion.current()
    old = current.parsed if current else None
    affected, count = [], 0
    for effect in effects(old, new):
        count += 1
        if count <= AFFECTED_SHOWN:
            affected.append({"customer_id": effect.customer.pk, "email": effect.customer.email,
                             "gains": sorted(effect.gains), "loses": sorted(effect.loses),
                             "targets": effect.targets, "description": effect.describe()})
    name = f"rules v{current.number}" if current else "(no rules)"
    return JsonResponse({"current_version": current.number if current else None,
                         "semantic_diff": semantic_diff(old, new),
                         "text_diff": text_diff(current.content if current else "", call.body["content"], name, "new"),
                         "affected_count": count, "affected": affected, "truncated": count > AFFECTED_SHOWN})


@api_view("admin", ["POST"], summary="Load rules as the next version and apply them", tag="rules", body=(
    CONTENT, Field("source", "string", "Where the rules come from, for the record (default: the token's name).",
                   max_length=200)),
    response=ref("RulesLoaded"), statuses=(201, 200),
    description="201 with the new version, after re-deriving the customers it changes; 200 when the content "
                "is identical to the current version (nothing happens). Invalid rules answer 400 with "
                "line-numbered `problems`.")
def rules_load(request: HttpRequest, call: Call) -> JsonResponse:
    content = call.body["content"]
    _parse(content)
    previous = RulesVersion.current()
    source = call.body["source"] or (f"api:{call.token.name}" if call.token else "api")
    version, created = load_text(content, source[:500], loaded_by=call.actor)
    changed = len(apply(version, previous)) if created else 0
    if created:
        record(call.actor, "rules_loaded", f"rules:v{version.number}",
               before={"version": previous.number if previous else None},
               after={"version": version.number, "content_hash": version.content_hash, "changed_customers": changed})
    return JsonResponse({"version": rules_dict(version), "created": created, "changed_customers": changed},
                        status=201 if created else 200)


# --- Health -----------------------------------------------------------------------------------
@api_view("viewer", ["GET"], summary="What needs attention: intake, failures, queues, lanes, alerts, workers",
          tag="health", response=ref("Health"))
def health(request: HttpRequest, call: Call) -> JsonResponse:
    now = timezone.now()
    day = now - timedelta(hours=24)
    last_event = {}
    for row in Event.objects.values("provider").annotate(last=Max("pk")):
        e = Event.objects.get(pk=row["last"])
        last_event[e.provider] = {"event_id": e.event_id, "type": e.type, "received_at": iso(e.received_at)}
    rejected = IntakeLog.objects.filter(received_at__gte=day).exclude(status_code=200)
    by_reason = {r["reason"]: r["n"] for r in rejected.values("reason").annotate(n=Count("pk")).order_by("reason")}
    failures = (Attempt.objects.filter(started_at__gte=day).exclude(outcome__in=("", "succeeded", "paused"))
                .values("job__provider", "reason_code").annotate(n=Count("pk"))
                .order_by("job__provider", "reason_code"))
    review = Job.objects.filter(state=JobState.NEEDS_REVIEW)
    pending = Job.objects.filter(state__in=PENDING_STATES)
    due = pending.filter(run_at__lte=now).aggregate(n=Count("pk"), oldest=Min("run_at"))
    fresh = WorkerHeartbeat.objects.filter(seen_at__gte=now - WORKER_FRESH).order_by("worker_id")
    return JsonResponse({
        "generated_at": iso(now),
        "intake": {"last_event": last_event, "rejected_24h": sum(by_reason.values()),
                   "rejected_24h_by_reason": by_reason},
        "failures_24h": [{"provider": f["job__provider"], "reason_code": f["reason_code"], "count": f["n"]}
                         for f in failures],
        "review_queue": {"count": review.count(), "by_reason": {r["reason_code"]: r["n"] for r in review.values(
            "reason_code").annotate(n=Count("pk")).order_by("reason_code")}},
        "queue": {"pending": pending.count(), "due": due["n"], "running": Job.objects.running().count(),
                  "oldest_due_seconds": round((now - due["oldest"]).total_seconds(), 3) if due["oldest"] else 0.0},
        "provider_lanes": [{"provider": s.provider, "status": s.status, "reason_code": s.reason_code,
                            "message": redact(s.message), "blocked": s.status != ProviderState.OK and bool(
                                s.blocked_until and s.blocked_until > now),
                            "blocked_until": iso(s.blocked_until), "consecutive_failures": s.consecutive_failures,
                            "updated_at": iso(s.updated_at)} for s in ProviderState.objects.order_by("provider")],
        "alerts": [{"key": a.key, "rule": a.rule, "summary": a.summary, "started_at": iso(a.started_at)}
                   for a in Alert.objects.filter(status=Alert.FIRING).order_by("started_at")],
        "workers": {"alive": fresh.count(), "seen": [
            {"worker_id": w.worker_id, "hostname": w.hostname, "seen_at": iso(w.seen_at),
             "started_at": iso(w.started_at), "jobs_done": w.jobs_done} for w in fresh]},
    })


@csrf_exempt
def not_found(request: HttpRequest, **kwargs: Any) -> JsonResponse:
    """Any other URL under /api/v1/: a JSON 404 rather than an HTML page."""
    return JsonResponse({"error": "not_found", "detail": "no such endpoint; see /api/v1/openapi.json"}, status=404)
