"""Events: the list, one event with its payload and jobs, replay, and the test event."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from frontdesk.audit.models import AuditEntry
from frontdesk.intake.models import Event, IntakeLog
from frontdesk.ledger.models import Job, JobState

from .. import stripe_events as se
from ..conftest import WEBHOOK_SECRET, drain, signed_post
from ..test_delivery import buy
from .conftest import as_role

pytestmark = pytest.mark.django_db


def test_the_event_page_shows_the_payload_indented_and_the_jobs_it_caused(
        client: Client, staff: dict[str, Any], fakes: Any, rules: Any) -> None:
    payload = buy(client, "ev@example.com")
    drain()
    event = Event.objects.get(event_id=payload["id"])
    as_role(client, staff, "viewer")
    page = client.get(reverse("web-event", args=[event.pk])).content.decode()
    assert f'  &quot;id&quot;: &quot;{payload["id"]}&quot;' in page  # indented JSON
    assert "ev@example.com" in page  # e-mails are shown to operators
    for job in Job.objects.all():  # processing, circle.sync, kit.sync
        assert f'href="{reverse("web-job", args=[job.pk])}"' in page
    assert page.count("state-succeeded") == 3
    listed = client.get(reverse("web-events")).content.decode()
    assert f'<a href="{reverse("web-jobs")}?correlation={event.correlation_id}">3</a>' in listed
    sync = Job.objects.get(kind="kit.sync")
    assert f'href="{reverse("web-event", args=[event.pk])}"' in client.get(reverse("web-job", args=[sync.pk])).content.decode()


def test_secrets_in_a_payload_are_masked(client: Client, staff: dict[str, Any], rules: Any) -> None:
    session = se.checkout_session("s@example.com", line_items=[se.line_item("price_community", "prod_community")])
    session["client_secret"] = "cs_test_a1_secret_b2c3d4"
    session["metadata"] = {"note": f"copied {WEBHOOK_SECRET} and sk_live_abcdef123456 by mistake"}
    payload = se.event("checkout.session.completed", session)
    signed_post(client, payload)
    event = Event.objects.get(event_id=payload["id"])
    as_role(client, staff, "viewer")
    page = client.get(reverse("web-event", args=[event.pk])).content.decode()
    assert "secret_b2c3d4" not in page and WEBHOOK_SECRET not in page and "sk_live_abcdef123456" not in page
    assert page.count("[redacted]") == 3 and "s@example.com" in page


def test_the_list_filters_by_type_status_customer_and_day(client: Client, staff: dict[str, Any], fakes: Any,
                                                          rules: Any) -> None:
    buy(client, "a@example.com")
    buy(client, "b@example.com")
    signed_post(client, se.event("product.created", {"id": "prod_1", "object": "product"}))
    drain()
    as_role(client, staff, "viewer")

    def count(**params: str) -> int:
        page = client.get(reverse("web-events"), params).content.decode()
        found = re.search(r"· (\d+) rows?", page)
        return int(found.group(1)) if found else 0

    assert count() == 3
    assert count(type="checkout.session.completed") == 2
    assert count(status="ignored") == 1
    assert count(customer="a@example.com") == 1 and count(customer="nobody@example.com") == 0
    today = Event.objects.first().received_at.date().isoformat()
    assert count(since=today, until=today) == 3 and count(until="2020-01-01") == 0


def test_replay_queues_processing_and_audits_it(client: Client, staff: dict[str, Any], fakes: Any, rules: Any) -> None:
    payload = buy(client, "re@example.com")
    drain()
    event = Event.objects.get(event_id=payload["id"])
    as_role(client, staff, "operator")
    response = client.post(reverse("web-event-replay", args=[event.pk]), {"reason": "check"})
    assert response["Location"] == reverse("web-event-progress", args=[event.pk])
    assert Job.objects.filter(event=event, kind="stripe.process_event").count() == 2
    entry = AuditEntry.objects.get(action="event_replayed")
    assert (entry.actor, entry.target, entry.reason) == ("operator", f"event:{event.event_id}", "check")
    drain()
    assert len(fakes.circle.calls_to("/api/admin/v2/community_members", "POST")) == 1  # idempotent


def test_an_ignored_event_cannot_be_replayed(client: Client, staff: dict[str, Any], rules: Any) -> None:
    payload = se.event("product.created", {"id": "prod_1", "object": "product"})
    signed_post(client, payload)
    event = Event.objects.get()
    as_role(client, staff, "operator")
    page = client.post(reverse("web-event-replay", args=[event.pk]), follow=True).content.decode()
    assert "events are not processed; nothing to replay" in page


def test_a_test_event_is_stored_signed_and_followed_until_every_job_is_final(
        client: Client, staff: dict[str, Any], fakes: Any, rules: Any) -> None:
    as_role(client, staff, "operator")
    form = client.get(reverse("web-test-event")).content.decode()
    assert '<option value="price_community"' in form
    response = client.post(reverse("web-test-event"), {"email": "try@example.com", "price": "price_community"})
    event = Event.objects.get()
    assert response["Location"] == reverse("web-event-progress", args=[event.pk])
    assert event.type == "checkout.session.completed" and json.loads(event.payload)["livemode"] is False
    assert not IntakeLog.objects.exists()  # not a delivery: the doctor's webhook check stays honest
    assert AuditEntry.objects.get(action="test_event_sent").actor == "operator"

    page = client.get(response["Location"]).content.decode()
    assert 'hx-get="%s"' % reverse("web-event-progress", args=[event.pk]) in page and 'data-final="false"' in page
    drain()
    partial = client.get(response["Location"], HTTP_HX_REQUEST="true").content.decode()
    assert "<html" not in partial and 'data-final="true"' in partial and "hx-get" not in partial
    assert partial.count("state-succeeded") == 3 and "Every step is final." in partial
    assert fakes.circle.member("try@example.com") is not None


def test_the_test_event_form_checks_its_input(client: Client, staff: dict[str, Any], rules: Any) -> None:
    as_role(client, staff, "operator")
    page = client.post(reverse("web-test-event"), {"email": "not-an-email", "price": "price_nope"}).content.decode()
    assert "Enter a valid email address." in page and "Select a valid choice." in page
    assert not Event.objects.exists()


def test_a_test_event_with_a_review_job_is_final_too(client: Client, staff: dict[str, Any], fakes: Any,
                                                      rules: Any) -> None:
    fakes.kit.fail(422, path="/v4/subscribers", method="POST", body={"errors": ["Email address is invalid"]})
    as_role(client, staff, "operator")
    response = client.post(reverse("web-test-event"), {"email": "bad@example.com", "price": "price_community"})
    drain()
    partial = client.get(response["Location"], HTTP_HX_REQUEST="true").content.decode()
    assert 'data-final="true"' in partial and "needs review: kit_invalid_email" in partial
    assert Job.objects.filter(state=JobState.NEEDS_REVIEW).count() == 1
