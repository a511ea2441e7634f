"""One way to show a job's state: label, colour and what happens next."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.template import Context, Template
from django.utils import timezone

from frontdesk.ledger import providers
from frontdesk.ledger.enqueue import enqueue
from frontdesk.ledger.models import Job, JobState
from frontdesk.web.states import blocked_lanes, show

pytestmark = pytest.mark.django_db


def job(state: str, **fields: object) -> Job:
    j = enqueue("kit.sync", "kit", idempotency_key=f"s:{state}:{fields}", correlation_id="c")
    Job.objects.filter(pk=j.pk).update(state=state, **fields)
    j.refresh_from_db()
    return j


def test_each_state_has_a_label_a_colour_and_a_next_step() -> None:
    now = timezone.now()
    cases = {
        JobState.QUEUED: ("queued", "queued", "A worker runs it"),
        JobState.RUNNING: ("running", "running", "if that worker dies it runs again"),
        JobState.RETRYING: ("retrying", "retrying (connection_error)", "next attempt in"),
        JobState.SUCCEEDED: ("succeeded", "succeeded", "nothing happens next"),
        JobState.NEEDS_REVIEW: ("needs_review", "needs review: kit_invalid_email", "Kit refused the e-mail address"),
        JobState.CANCELLED: ("cancelled", "cancelled", "Stopped by a person"),
    }
    reasons = {JobState.RETRYING: "connection_error", JobState.NEEDS_REVIEW: "kit_invalid_email"}
    for state, (key, label, next_) in cases.items():
        shown = show(job(state, reason_code=reasons.get(state, ""), run_at=now + timedelta(seconds=30)), {}, now)
        assert (shown.key, shown.label) == (key, label), state
        assert next_ in shown.next, state


def test_a_waiting_job_of_a_blocked_lane_is_paused_by_provider() -> None:
    waiting = job(JobState.RETRYING, reason_code="rate_limited")
    done = job(JobState.SUCCEEDED)
    providers.block("kit", "rate_limited", "rate_limited", "429", 120)
    lanes = blocked_lanes()
    shown = show(waiting, lanes)
    assert (shown.key, shown.label) == ("paused", "paused by provider")
    assert "kit: rate-limited. This job waits without spending attempts" in shown.next
    assert show(done, lanes).key == "succeeded"


def test_the_template_tag_reads_the_lanes_once_per_request(django_assert_num_queries: object) -> None:
    jobs = [job(JobState.QUEUED, reason_code=str(i)) for i in range(5)]
    template = Template("{% load web %}{% for j in jobs %}{% job_state j %}{% endfor %}")

    class Request:
        pass

    with django_assert_num_queries(1):  # type: ignore[operator]
        html = template.render(Context({"jobs": jobs, "request": Request()}))
    assert html.count('class="state state-queued"') == 5 and html.count('class="next"') == 5
