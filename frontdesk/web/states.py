"""How a job's state is shown everywhere: one label, one colour, and one line saying what
happens next. "Paused by provider" is not a stored state: it is a waiting job whose provider
lane is blocked (circuit open, rate limited, or paused for bad credentials)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone

from frontdesk.ledger.models import Job, JobState, ProviderState

# What a reason code means for the person looking at it (docs/operations.md).
REASONS = {
    "kit_invalid_email": "Kit refused the e-mail address. Correct it in Stripe (customer.updated) or in Kit, then retry.",
    "kit_target_missing": "A Kit tag, sequence or field the rules name does not exist. Fix the rules or create it in Kit, then retry.",
    "circle_missing_space": "A Circle space the rules name does not exist. Fix the rules or Circle, then retry.",
    "circle_missing_space_group": "A Circle space group the rules name does not exist. Fix the rules or Circle, then retry.",
    "circle_missing_access_group": "A Circle access group the rules name does not exist. Fix the rules or Circle, then retry.",
    "circle_missing_member_tag": "A Circle member tag the rules name does not exist. Fix the rules or Circle, then retry.",
    "circle_member_limit": "The Circle plan's member limit is reached. Raise it in Circle, then retry.",
    "circle_validation_failed": "Circle rejected the request. Read the attempt message, fix the data, then retry.",
    "missing_email": "The customer has no e-mail address yet; a later Stripe event usually brings one. Retry once it does.",
    "no_rules_loaded": "No rules are loaded, so nothing can be granted. Load rules, then retry.",
    "retries_exhausted": "Temporary failures went on past the retry deadline. Check the provider, then retry.",
    "internal_error": "frontdesk hit an unexpected error (a bug or bad data). Read the attempt message; retry after a fix.",
    "hubspot_property_missing": "A HubSpot contact property is missing. Create it (docs/crm.md), then retry.",
    "hubspot_invalid_email": "HubSpot refused the e-mail address. Correct it, then retry.",
    "hubspot_invalid_value": "HubSpot refused a property value. Read the attempt message, then retry.",
    "hubspot_validation_failed": "HubSpot rejected the request. Read the attempt message, then retry.",
    "payload_pruned": "The event's body was deleted by retention; nothing to process.",
    "event_missing": "The event this job processes no longer exists.",
    "malformed_event": "The event could not be read. Look at its payload.",
    "cancelled_by_hand": "A person cancelled it.",
    "resolved_by_hand": "A person did the work by hand and marked it resolved.",
}

LANE_LABELS = {
    ProviderState.CIRCUIT_OPEN: "circuit open",
    ProviderState.RATE_LIMITED: "rate-limited",
    ProviderState.PAUSED: "paused: bad credentials",
}
LANE_WORDS = {
    ProviderState.CIRCUIT_OPEN: "circuit open after repeated failures",
    ProviderState.RATE_LIMITED: "rate-limited",
    ProviderState.PAUSED: "paused: its credentials were refused",
}


@dataclass(frozen=True)
class Shown:
    key: str  # CSS suffix: state-<key>
    label: str
    next: str  # what happens next, in one line


def reason_text(code: str) -> str:
    return REASONS.get(code, "")


def _when(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return "soon"
    if moment <= now:
        return "now"
    seconds = int((moment - now).total_seconds())
    if seconds < 90:
        return f"in {seconds} s ({moment:%H:%M:%S} UTC)"
    if seconds < 5400:
        return f"in {seconds // 60} min ({moment:%H:%M} UTC)"
    return f"at {moment:%Y-%m-%d %H:%M} UTC"


def blocked_lanes(now: datetime | None = None) -> dict[str, ProviderState]:
    now = now or timezone.now()
    return {s.provider: s for s in ProviderState.objects.exclude(status=ProviderState.OK).filter(blocked_until__gt=now)}


def show(job: Job, lanes: dict[str, ProviderState], now: datetime | None = None) -> Shown:
    now = now or timezone.now()
    state, reason = job.state, job.reason_code
    lane = lanes.get(job.provider)
    if state in (JobState.QUEUED, JobState.RETRYING) and lane is not None:
        words = LANE_WORDS.get(lane.status, lane.status)
        return Shown("paused", "paused by provider",
                     f"{job.provider}: {words}. This job waits without spending attempts and runs "
                     f"{_when(lane.blocked_until, now)} at the earliest.")
    if state == JobState.QUEUED:
        return Shown("queued", "queued", f"A worker runs it {_when(job.run_at, now)}.")
    if state == JobState.RUNNING:
        return Shown("running", "running",
                     f"A worker is on attempt {job.attempts}; if that worker dies it runs again when its lease "
                     f"ends {_when(job.lease_expires_at, now)}.")
    if state == JobState.RETRYING:
        return Shown("retrying", f"retrying ({reason})" if reason else "retrying",
                     f"A temporary failure; next attempt {_when(job.run_at, now)}. Retries stop "
                     f"{_when(job.deadline, now)} and the job then goes to review.")
    if state == JobState.SUCCEEDED:
        return Shown("succeeded", "resolved by hand" if reason == "resolved_by_hand" else "succeeded",
                     "Done; nothing happens next.")
    if state == JobState.NEEDS_REVIEW:
        return Shown("needs_review", f"needs review: {reason or 'no reason'}",
                     reason_text(reason) or "Waits for a person: fix the cause, then retry, resolve or cancel it.")
    if state == JobState.CANCELLED:
        return Shown("cancelled", "cancelled", "Stopped by a person; nothing happens unless someone retries it.")
    return Shown(state, state, "")
