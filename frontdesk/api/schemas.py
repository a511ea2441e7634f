"""JSON Schemas (OpenAPI 3.1) of what the API answers. The tests check every response they
receive against these, so a field added to a view without being documented fails a test."""

from __future__ import annotations

from typing import Any

from frontdesk.intake.models import Event
from frontdesk.ledger.models import JobState


def ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def obj(required: bool = True, **props: Any) -> dict[str, Any]:
    """An object with exactly these properties (all present in answers unless required=False)."""
    s: dict[str, Any] = {"type": "object", "properties": props, "additionalProperties": False}
    if required:
        s["required"] = list(props)
    return s


def page_of(name: str) -> dict[str, Any]:
    return obj(items={"type": "array", "items": ref(name)},
               next_cursor={"type": ["string", "null"],
                            "description": "Pass as `cursor` to get the next page; null on the last page."})


STR = {"type": "string"}
INT = {"type": "integer"}
BOOL = {"type": "boolean"}
TIME = {"type": "string", "format": "date-time"}
TIME_OR_NULL = {"type": ["string", "null"], "format": "date-time"}
STR_OR_NULL = {"type": ["string", "null"]}
INT_OR_NULL = {"type": ["integer", "null"]}
STRINGS = {"type": "array", "items": STR}
ANY_OBJECT = {"type": "object"}

COMPONENTS: dict[str, dict[str, Any]] = {
    "Error": obj(required=False, error={"type": "string", "description": "A short code: unauthorized, forbidden, "
                                        "not_found, bad_request, invalid_json, invalid_rules, conflict, "
                                        "method_not_allowed, too_large, internal_error."},
                 detail={"type": "string", "description": "What went wrong, in words."},
                 problems={"type": "array", "items": {"$ref": "#/components/schemas/RulesProblem"}}) | {
        "required": ["error", "detail"]},
    "RulesProblem": obj(line=INT, message=STR),
    "Event": obj(
        id=INT, event_id={"type": "string", "description": "The provider's id (evt_…)."}, provider=STR, type=STR,
        status={"type": "string", "enum": [s for s, _ in Event.STATUSES]}, status_reason=STR, livemode=BOOL,
        created=TIME_OR_NULL, received_at=TIME, processed_at=TIME_OR_NULL, customer_id=INT_OR_NULL,
        correlation_id=STR),
    "EventDetail": {"allOf": [ref("Event")]},  # replaced below: detail = summary fields + more
    "Job": obj(
        id=INT, kind=STR, provider=STR, state={"type": "string", "enum": list(JobState.values)},
        reason_code=STR, attempts=INT, priority=INT, customer_id=INT_OR_NULL,
        event_id={"type": ["string", "null"], "description": "The event that caused it (evt_…), if any."},
        run_at=TIME, deadline=TIME, created_at=TIME, updated_at=TIME, finished_at=TIME_OR_NULL,
        correlation_id=STR, last_error={"type": "string", "description": "Redacted: no tokens, no e-mails."}),
    "Attempt": obj(number=INT, worker=STR, started_at=TIME, duration_ms={"type": ["number", "null"]},
                   outcome=STR, http_status=INT_OR_NULL, reason_code=STR, message=STR),
    "Customer": obj(id=INT, email=STR, name=STR, stripe_customer_id=STR_OR_NULL, created_at=TIME, updated_at=TIME,
                    access={**STRINGS, "description": "Names of the entitlements active now."}),
    "Entitlement": obj(name=STR, status={"type": "string", "enum": ["active", "suspended", "revoked"]},
                       source_type=STR, source_id=STR, expires_at=TIME_OR_NULL, reason=STR, rules_version=INT,
                       event_id=STR, granted_at=TIME, updated_at=TIME),
    "Override": obj(id=INT, customer_id=INT, entitlement=STR, action={"type": "string", "enum": ["grant", "revoke"]},
                    reason=STR, expires_at=TIME_OR_NULL, created_by=STR, created_at=TIME, removed_at=TIME_OR_NULL,
                    removed_by=STR, state={"type": "string", "enum": ["active", "expired", "removed"]}),
    "HistoryEntry": obj(at=TIME, entitlement=STR, source_id=STR, before=STR, after=STR, before_expires=TIME_OR_NULL,
                        after_expires=TIME_OR_NULL, cause=STR, rules_version=INT_OR_NULL, reason=STR),
    "StripeObjectSummary": obj(object_type=STR, object_id=STR, status=STR, version_event=STR, updated_at=TIME),
    "ProviderAccount": obj(provider=STR, external_id=STR, synced_at=TIME_OR_NULL,
                           applied={**ANY_OBJECT, "description": "What frontdesk last applied there."}),
    "RulesVersion": obj(number=INT, content_hash=STR, source=STR, loaded_by=STR, loaded_at=TIME),
    "RulesCurrent": obj(number=INT, content_hash=STR, source=STR, loaded_by=STR, loaded_at=TIME,
                        content={"type": "string", "description": "The YAML as loaded."},
                        parsed={**ANY_OBJECT, "description": "The normalised rules."}),
    "RulesEffect": obj(customer_id=INT, email=STR, gains=STRINGS, loses=STRINGS,
                       targets={"type": "object", "additionalProperties": {
                           "type": "object", "additionalProperties": {"type": "array"}},
                           "description": "provider → {'+spaces': [ids], '-tags': [ids], 'fields': [...]}"},
                       description=STR),
    "RulesPreview": obj(current_version=INT_OR_NULL, semantic_diff=STRINGS, text_diff=STRINGS,
                        affected_count=INT, affected={"type": "array", "items": ref("RulesEffect")},
                        truncated={**BOOL, "description": "True when `affected` lists only the first 500."}),
    "RulesLoaded": obj(version=ref("RulesVersion"), created=BOOL, changed_customers=INT),
    "BulkRetry": obj(retried=INT),
    "ProviderLane": obj(provider=STR, status=STR, reason_code=STR, message=STR, blocked=BOOL,
                        blocked_until=TIME_OR_NULL, consecutive_failures=INT, updated_at=TIME),
    "Health": obj(
        generated_at=TIME,
        intake=obj(
            last_event={"type": "object", "description": "provider → the newest stored event",
                        "additionalProperties": obj(event_id=STR, type=STR, received_at=TIME)},
            rejected_24h={**INT, "description": "Webhook requests answered with an error in the last 24 h."},
            rejected_24h_by_reason={"type": "object", "additionalProperties": INT}),
        failures_24h={"type": "array", "description": "Failed job attempts in the last 24 h.",
                      "items": obj(provider=STR, reason_code=STR, count=INT)},
        review_queue=obj(count=INT, by_reason={"type": "object", "additionalProperties": INT}),
        queue=obj(pending=INT, due=INT, running=INT, oldest_due_seconds={"type": "number"}),
        provider_lanes={"type": "array", "items": ref("ProviderLane")},
        alerts={"type": "array", "description": "Alerts firing now.",
                "items": obj(key=STR, rule=STR, summary=STR, started_at=TIME)},
        workers=obj(alive=INT, seen={"type": "array", "items": obj(worker_id=STR, hostname=STR, seen_at=TIME,
                                                                      started_at=TIME, jobs_done=INT)})),
}
COMPONENTS["EventDetail"] = {**COMPONENTS["Event"], "properties": {
    **COMPONENTS["Event"]["properties"],
    "payload": {"type": ["object", "null"], "description": "The stored body, parsed; null once pruned."},
    "jobs": {"type": "array", "items": ref("Job")}}}
COMPONENTS["EventDetail"]["required"] = list(COMPONENTS["EventDetail"]["properties"])
COMPONENTS["JobDetail"] = {**COMPONENTS["Job"], "properties": {
    **COMPONENTS["Job"]["properties"],
    "payload": {**ANY_OBJECT, "description": "Kind-specific arguments."},
    "attempt_history": {"type": "array", "items": ref("Attempt")}}}
COMPONENTS["JobDetail"]["required"] = list(COMPONENTS["JobDetail"]["properties"])
COMPONENTS["CustomerDetail"] = {**COMPONENTS["Customer"], "properties": {
    **COMPONENTS["Customer"]["properties"],
    "entitlements": {"type": "array", "items": ref("Entitlement")},
    "overrides": {"type": "array", "items": ref("Override")},
    "history": {"type": "array", "items": ref("HistoryEntry")},
    "stripe_objects": {"type": "array", "items": ref("StripeObjectSummary")},
    "conflicts": {**STRINGS, "description": "Disagreements between payments and access."},
    "explain": {**STRINGS, "description": "The answer of `frontdesk explain`, line by line."},
    "providers": {"type": "array", "items": ref("ProviderAccount")},
    "jobs": {"type": "array", "items": ref("Job"), "description": "The 20 newest jobs."}}}
COMPONENTS["CustomerDetail"]["required"] = list(COMPONENTS["CustomerDetail"]["properties"])
