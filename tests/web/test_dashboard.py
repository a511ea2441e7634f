"""The dashboard's numbers, made by real purchases through the worker and injected faults,
and the lists their links open."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from frontdesk.alerts.models import Alert
from frontdesk.customers.models import Customer
from frontdesk.ledger import providers
from frontdesk.ledger.enqueue import enqueue
from frontdesk.ledger.models import Job, JobState
from frontdesk.ops import actions

from ..conftest import drain, signed_post
from ..test_delivery import buy
from .conftest import as_role

pytestmark = pytest.mark.django_db
INVALID = {"errors": ["Email address is invalid"]}


def links(html: str) -> dict[str, str]:
    """href → link text of every link in the page."""
    return {m.group(1).replace("&amp;", "&"): re.sub(r"<[^>]+>", "", m.group(2)).strip()
            for m in re.finditer(r'<a[^>]* href="([^"]+)"[^>]*>(.*?)</a>', html, re.S)}


def rows_behind(client: Client, href: str) -> int:
    """How many rows the list at ``href`` has (from its pager)."""
    page = client.get(href).content.decode()
    found = re.search(r"· (\d+) rows?", page)
    return int(found.group(1)) if found else 0


@pytest.fixture
def broken_kit(client: Client, fakes: Any, rules: Any) -> Job:
    fakes.kit.fail(422, path="/v4/subscribers", method="POST", count=1, body=INVALID)
    buy(client, "broken@example.com")
    buy(client, "fine@example.com")
    drain()
    return Job.objects.get(state=JobState.NEEDS_REVIEW)


def test_a_failed_job_shows_with_its_reason_and_links_to_exactly_it(client: Client, staff: dict[str, Any],
                                                                   broken_kit: Job) -> None:
    as_role(client, staff, "viewer")
    html = client.get(reverse("web-home")).content.decode()
    found = links(html)
    review = reverse("web-jobs") + "?state=needs_review&reason=kit_invalid_email"
    failed = reverse("web-jobs") + "?provider=kit&failed_hours=24&failed_reason=kit_invalid_email"
    assert found[review] == "1" and found[failed] == "1"
    assert found[reverse("web-jobs") + "?state=needs_review"] == "1"
    assert "Kit refused the e-mail address" in html  # what happens next
    for href in (review, failed):
        assert rows_behind(client, href) == 1
        assert f'href="{reverse("web-job", args=[broken_kit.pk])}"' in client.get(href).content.decode()
    # Intake: both purchases were verified in the last 24 h.
    accepted = reverse("web-intake") + "?provider=stripe&outcome=accepted&since_hours=24"
    assert found[accepted] == "2" and rows_behind(client, accepted) == 2
    assert "never" not in html.split("Last verified event")[1][:400]


def test_after_a_retry_the_review_queue_is_empty_but_the_failure_stays_in_the_24_h_count(
        client: Client, staff: dict[str, Any], broken_kit: Job) -> None:
    actions.retry_job(broken_kit, "sam")
    drain()
    as_role(client, staff, "viewer")
    html = client.get(reverse("web-home")).content.decode()
    assert "Nothing waits for a person." in html
    assert links(html)[reverse("web-jobs") + "?provider=kit&failed_hours=24&failed_reason=kit_invalid_email"] == "1"


def test_rejected_requests_are_counted_by_reason_with_what_to_do(client: Client, staff: dict[str, Any],
                                                                 rules: Any) -> None:
    for _ in range(3):
        signed_post(client, {"id": "evt_x", "type": "invoice.paid"}, secrets=["whsec_wrong"])
    as_role(client, staff, "viewer")
    html = client.get(reverse("web-home")).content.decode()
    href = reverse("web-intake") + "?outcome=rejected&reason=bad_signature&since_hours=24"
    assert links(html)[href] == "3" and rows_behind(client, href) == 3
    assert "rotated webhook secret" in html
    assert "No event has ever been verified" in html


def test_a_paused_provider_and_its_waiting_jobs(client: Client, staff: dict[str, Any], rules: Any) -> None:
    customer = Customer.objects.create(email="p@example.com")
    job = enqueue("kit.sync", "kit", idempotency_key="k1", correlation_id="c1", customer_id=customer.pk)
    providers.block("kit", "paused", "kit_unauthorized", "401 from Kit", 300)
    as_role(client, staff, "viewer")
    html = client.get(reverse("web-home")).content.decode()
    assert "paused: bad credentials" in html and "Replace the kit token or key and restart" in html
    href = reverse("web-jobs") + "?provider=kit&state=waiting"
    assert links(html)[href] == "1"
    listed = client.get(href).content.decode()
    assert "paused by provider" in listed and "without spending attempts" in listed
    assert f'href="{reverse("web-job", args=[job.pk])}"' in listed
    assert "No worker has been seen in the last minute" in html


def test_firing_alerts_link_to_what_they_are_about(client: Client, staff: dict[str, Any], db: None) -> None:
    now = timezone.now()
    Alert.objects.create(key="review_queue", rule="review_queue", summary="2 job(s) need review (kit_invalid_email).",
                         started_at=now - timedelta(minutes=5), last_sent_at=now, notifications=1)
    Alert.objects.create(key="old", rule="no_events", summary="resolved one", status=Alert.RESOLVED,
                         started_at=now - timedelta(days=1), last_sent_at=now, resolved_at=now)
    as_role(client, staff, "viewer")
    html = client.get(reverse("web-home")).content.decode()
    assert "2 job(s) need review" in html and "resolved one" not in html
    assert f'<a href="{reverse("web-jobs")}?state=needs_review">review_queue</a>' in html


def test_conflicts_between_payments_and_overrides(client: Client, staff: dict[str, Any], fakes: Any, rules: Any) -> None:
    buy(client, "paid@example.com")
    buy(client, "other@example.com")  # no override: not counted
    drain()
    customer = Customer.objects.get(email="paid@example.com")
    actions.revoke_access(customer, "community", "sam", "abuse report")
    as_role(client, staff, "viewer")
    html = client.get(reverse("web-home")).content.decode()
    assert "payment active but access &#x27;community&#x27; revoked by hand" in html
    assert links(html)[reverse("web-customer", args=[customer.pk])] == "paid@example.com"
    assert "Checked the 1 newest customer with an active override" in html


def test_the_dashboard_reads_in_a_bounded_number_of_queries(client: Client, staff: dict[str, Any],
                                                            broken_kit: Job, django_assert_max_num_queries: Any) -> None:
    as_role(client, staff, "viewer")
    client.get(reverse("web-home"))  # warm the session
    with django_assert_max_num_queries(40):
        assert client.get(reverse("web-home")).status_code == 200
