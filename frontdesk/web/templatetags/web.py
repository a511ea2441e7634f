"""Template helpers of the admin app: the one way a job state is shown, and small filters."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django import template
from django.http import HttpRequest
from django.utils import timezone

from frontdesk.ledger.models import Job
from frontdesk.web import states
from frontdesk.web.roles import has_role

register = template.Library()


def _lanes(context: template.Context) -> dict[str, Any]:
    """Blocked provider lanes, read once per request however many jobs a page shows."""
    request: HttpRequest | None = context.get("request")
    if request is None:
        return states.blocked_lanes()
    if not hasattr(request, "_web_lanes"):
        request._web_lanes = states.blocked_lanes()  # type: ignore[attr-defined]
    return request._web_lanes  # type: ignore[attr-defined, no-any-return]


@register.inclusion_tag("web/_state.html", takes_context=True)
def job_state(context: template.Context, job: Job, explain: bool = True) -> dict[str, Any]:
    """``{% job_state job %}``: label, colour and what happens next, the same on every page."""
    return {"shown": states.show(job, _lanes(context)), "explain": explain}


@register.simple_tag(takes_context=True)
def can(context: template.Context, role: str) -> bool:
    """``{% can "operator" as operator %}``: whether to show a form (the view checks again)."""
    request = context.get("request")
    return bool(request is not None and has_role(request.user, role))


@register.filter
def reason_text(code: str) -> str:
    return states.reason_text(code or "")


@register.filter
def ago(moment: datetime | None) -> str:
    """"3 min ago" / "in 2 h" for a moment, short and plain."""
    if moment is None:
        return "never"
    seconds = (timezone.now() - moment).total_seconds()
    future, seconds = seconds < 0, abs(seconds)
    if seconds < 60:
        text = f"{int(seconds)} s"
    elif seconds < 3600:
        text = f"{int(seconds // 60)} min"
    elif seconds < 48 * 3600:
        text = f"{seconds / 3600:.1f} h"
    else:
        text = f"{int(seconds // 86400)} days"
    return f"in {text}" if future else f"{text} ago"


@register.filter
def seconds(value: float | None) -> str:
    if value is None:
        return "–"
    value = float(value)
    if value < 120:
        return f"{value:.0f} s"
    if value < 7200:
        return f"{value / 60:.0f} min"
    return f"{value / 3600:.1f} h"
