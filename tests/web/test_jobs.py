"""The job list, one job, and the actions on jobs: their effects and audit entries."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from frontdesk.audit.models import AuditEntry
from frontdesk.customers.models import Customer
from frontdesk.ledger.enqueue import enqueue
from frontdesk.ledger.models import Attempt, Job, JobState

from ..conftest import drain
from ..test_delivery import buy
from .conftest import as_role

pytestmark = pytest.mark.django_db
INVALID = {"errors": ["Email address is invalid"]}


@pytest.fixture
def review_job(client: Client, fakes: Any, rules: Any) -> Job:
    fakes.kit.fail(422, path="/v4/subscribers", method="POST", count=1, body=INVALID)
    buy(client, "act@example.com")
    drain()
    return Job.objects.get(state=JobState.NEEDS_REVIEW)


def test_the_job_page_shows_the_attempt_history(client: Client, staff: dict[str, Any], review_job: Job) -> None:
    as_role(client, staff, "viewer")
    page = client.get(reverse("web-job", args=[review_job.pk])).content.decode()
    attempt = Attempt.objects.get(job=review_job)
    assert "needs review: kit_invalid_email" in page and "Kit refused the e-mail address" in page
    assert "<td>422</td>" in page and "permanent" in page and f"{attempt.duration_ms:.0f} ms" in page
    assert "Email address is invalid" in page
    assert "Retry now" not in page  # a viewer sees no action forms


def test_retry_from_the_page_queues_the_job_and_audits_it(client: Client, staff: dict[str, Any], review_job: Job) -> None:
    as_role(client, staff, "operator")
    response = client.post(reverse("web-job-retry", args=[review_job.pk]), {"reason": "address fixed"}, follow=True)
    assert "queued again" in response.content.decode()
    review_job.refresh_from_db()
    assert review_job.state == JobState.QUEUED
    entry = AuditEntry.objects.get(action="job_retried")
    assert (entry.actor, entry.target, entry.reason) == ("operator", f"job:{review_job.pk}", "address fixed")
    drain()
    assert Job.objects.get(pk=review_job.pk).state == JobState.SUCCEEDED


def test_resolve_and_cancel_need_a_reason(client: Client, staff: dict[str, Any], review_job: Job) -> None:
    as_role(client, staff, "operator")
    page = client.post(reverse("web-job-cancel", args=[review_job.pk]), {"reason": " "}, follow=True).content.decode()
    assert "say why the job is cancelled" in page
    assert Job.objects.get(pk=review_job.pk).state == JobState.NEEDS_REVIEW
    client.post(reverse("web-job-resolve", args=[review_job.pk]), {"reason": "tagged by hand in Kit"})
    review_job.refresh_from_db()
    assert (review_job.state, review_job.reason_code) == (JobState.SUCCEEDED, "resolved_by_hand")
    assert AuditEntry.objects.get(action="job_resolved").reason == "tagged by hand in Kit"
    page = client.get(reverse("web-job", args=[review_job.pk])).content.decode()
    assert "resolved by hand" in page and "Mark resolved" not in page


def test_cancel_stops_a_waiting_job(client: Client, staff: dict[str, Any], rules: Any) -> None:
    job = enqueue("kit.sync", "kit", idempotency_key="c", correlation_id="c")
    as_role(client, staff, "operator")
    client.post(reverse("web-job-cancel", args=[job.pk]), {"reason": "duplicate"})
    job.refresh_from_db()
    assert (job.state, job.reason_code) == (JobState.CANCELLED, "cancelled_by_hand")
    entry = AuditEntry.objects.get(action="job_cancelled")
    assert (entry.actor, entry.reason, entry.before["state"]) == ("operator", "duplicate", "queued")


def test_a_succeeded_job_cannot_be_retried_and_says_why(client: Client, staff: dict[str, Any], review_job: Job) -> None:
    done = Job.objects.filter(state=JobState.SUCCEEDED).first()
    as_role(client, staff, "operator")
    page = client.post(reverse("web-job-retry", args=[done.pk]), follow=True).content.decode()
    assert "only jobs that are not running or done can be retried" in page
    assert not AuditEntry.objects.filter(action="job_retried").exists()


def test_bulk_retry_acts_on_the_filtered_list_only(client: Client, staff: dict[str, Any], rules: Any) -> None:
    customer = Customer.objects.create(email="b@example.com")
    kit = [enqueue("kit.sync", "kit", idempotency_key=f"k{i}", correlation_id="c", customer_id=customer.pk) for i in range(3)]
    circle = enqueue("circle.sync", "circle", idempotency_key="c1", correlation_id="c", customer_id=customer.pk)
    Job.objects.filter(pk__in=[j.pk for j in [*kit, circle]]).update(state=JobState.NEEDS_REVIEW, reason_code="kit_invalid_email")
    as_role(client, staff, "operator")
    listed = client.get(reverse("web-jobs"), {"provider": "kit", "state": "needs_review"}).content.decode()
    assert "Retry 3" in listed and 'name="filter-provider" value="kit"' in listed
    response = client.post(reverse("web-jobs-retry"), {"filter-provider": "kit", "filter-state": "needs_review", "reason": "key fixed"})
    assert response["Location"] == reverse("web-jobs") + "?state=needs_review&provider=kit"
    assert set(Job.objects.filter(provider="kit").values_list("state", flat=True)) == {JobState.QUEUED}
    assert Job.objects.get(pk=circle.pk).state == JobState.NEEDS_REVIEW
    assert AuditEntry.objects.filter(action="job_retried").count() == 3
    bulk = AuditEntry.objects.get(action="jobs_bulk_retried")
    assert (bulk.after, bulk.reason, bulk.actor) == ({"count": 3}, "key fixed", "operator")


def test_bulk_retry_refuses_an_unfiltered_list(client: Client, staff: dict[str, Any], rules: Any) -> None:
    job = enqueue("kit.sync", "kit", idempotency_key="k", correlation_id="c")
    Job.objects.filter(pk=job.pk).update(state=JobState.NEEDS_REVIEW)
    as_role(client, staff, "operator")
    page = client.post(reverse("web-jobs-retry"), follow=True).content.decode()
    assert "Filter the list first" in page
    assert Job.objects.get(pk=job.pk).state == JobState.NEEDS_REVIEW


def test_the_list_pages_by_50_and_keeps_its_filters(client: Client, staff: dict[str, Any], rules: Any) -> None:
    for i in range(120):
        enqueue("kit.sync", "kit", idempotency_key=f"p{i}", correlation_id="c")
    enqueue("circle.sync", "circle", idempotency_key="other", correlation_id="c")
    as_role(client, staff, "viewer")
    first = client.get(reverse("web-jobs"), {"provider": "kit"}).content.decode()
    assert first.count('<td><code>kit.sync</code></td>') == 50 and "circle.sync</code></td>" not in first
    assert "Page 1 of 3 · 120 rows" in first
    assert '?provider=kit&amp;page=2"' in first
    last = client.get(reverse("web-jobs"), {"provider": "kit", "page": 3}).content.decode()
    assert last.count('<td><code>kit.sync</code></td>') == 20


def test_the_list_filters_by_kind_customer_and_event(client: Client, staff: dict[str, Any], fakes: Any, rules: Any) -> None:
    buy(client, "one@example.com")
    buy(client, "two@example.com")
    drain()
    one = Customer.objects.get(email="one@example.com")
    as_role(client, staff, "viewer")
    page = client.get(reverse("web-jobs"), {"customer": one.pk}).content.decode()
    assert page.count("one@example.com") == 2 and "two@example.com" not in page  # circle.sync, kit.sync
    page = client.get(reverse("web-jobs"), {"kind": "stripe.process_event"}).content.decode()
    assert "· 2 rows" in page
