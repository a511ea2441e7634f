"""The shared operator actions: checks, effects and audit entries."""

from __future__ import annotations

from typing import Any

import pytest

from frontdesk.audit.models import AuditEntry
from frontdesk.customers.models import Customer
from frontdesk.intake.models import Event
from frontdesk.ledger.models import Job, JobState
from frontdesk.ops import actions

from .conftest import drain
from .test_delivery import buy

pytestmark = pytest.mark.django_db


@pytest.fixture
def review_job(client: Any, fakes: Any, rules: Any) -> Job:
    fakes.kit.fail(422, path="/v4/subscribers", method="POST", count=1, body={"errors": ["Email address is invalid"]})
    buy(client, "act@example.com")
    drain()
    return Job.objects.get(state=JobState.NEEDS_REVIEW)


def test_retry_requeues_and_audits(review_job: Job) -> None:
    actions.retry_job(review_job, "sam", "fixed the address")
    review_job.refresh_from_db()
    assert review_job.state == JobState.QUEUED
    entry = AuditEntry.objects.get(action="job_retried")
    assert (entry.actor, entry.before["state"], entry.after["state"], entry.reason) == (
        "sam", "needs_review", "queued", "fixed the address")
    drain()
    assert Job.objects.get(pk=review_job.pk).state == JobState.SUCCEEDED


def test_a_succeeded_job_cannot_be_retried_or_cancelled(review_job: Job) -> None:
    done = Job.objects.filter(state=JobState.SUCCEEDED).first()
    with pytest.raises(actions.ActionError, match="cannot be retried|not running or done"):
        actions.retry_job(done, "sam")
    with pytest.raises(actions.ActionError, match="cannot be cancelled"):
        actions.cancel_job(done, "sam", "no")


def test_cancel_and_resolve_need_a_reason(review_job: Job) -> None:
    with pytest.raises(actions.ActionError, match="say why"):
        actions.cancel_job(review_job, "sam", "")
    actions.resolve_job(review_job, "sam", "tagged by hand in Kit")
    review_job.refresh_from_db()
    assert (review_job.state, review_job.reason_code) == ("succeeded", "resolved_by_hand")
    assert AuditEntry.objects.filter(action="job_resolved").exists()


def test_bulk_retry_takes_a_filtered_selection(review_job: Job) -> None:
    assert actions.retry_jobs(Job.objects.filter(state=JobState.NEEDS_REVIEW), "sam", "batch") == 1
    assert AuditEntry.objects.get(action="jobs_bulk_retried").after == {"count": 1}


def test_replay_and_access_overrides(review_job: Job) -> None:
    event = Event.objects.get()
    job = actions.replay_event(event, "sam")
    assert job.kind == "stripe.process_event"
    customer = Customer.objects.get()
    override = actions.revoke_access(customer, "community", "sam", "chargeback risk")
    assert AuditEntry.objects.filter(action="override_revoke", actor="sam").exists()
    actions.remove_override(override, "sam", "cleared")
    with pytest.raises(actions.ActionError, match="already removed"):
        actions.remove_override(override, "sam", "again")
    with pytest.raises(actions.ActionError, match="not an entitlement"):
        actions.grant_access(customer, "nope", "sam", "x")


def test_retrying_next_to_a_waiting_job_explains_instead_of_crashing(review_job: Job) -> None:
    from frontdesk.ledger.enqueue import request_sync

    request_sync(review_job.provider, review_job.customer_id, correlation_id="c", cause="newer")
    with pytest.raises(actions.ActionError, match="already waiting"):
        actions.retry_job(review_job, "sam")
    assert actions.retry_jobs(Job.objects.filter(state=JobState.NEEDS_REVIEW), "sam") == 0
    assert AuditEntry.objects.filter(action="jobs_bulk_retried").exists()
