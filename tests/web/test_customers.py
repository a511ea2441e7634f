"""Customers: search, the detail page with its explanation, and overrides from the page."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from frontdesk.audit.models import AuditEntry
from frontdesk.customers.models import Customer, Entitlement, Override

from ..conftest import drain
from ..test_delivery import buy
from .conftest import as_role

pytestmark = pytest.mark.django_db


@pytest.fixture
def paid(client: Client, fakes: Any, rules: Any) -> Customer:
    buy(client, "Ada@Example.com")
    buy(client, "grace@example.com")
    drain()
    return Customer.objects.get(email="ada@example.com")


def test_search_by_email_part_stripe_id_or_number(client: Client, staff: dict[str, Any], paid: Customer) -> None:
    as_role(client, staff, "viewer")
    page = client.get(reverse("web-customers"), {"q": "example.com"}).content.decode()
    assert "ada@example.com" in page and "grace@example.com" in page
    for query in ("ADA@", paid.stripe_customer_id, str(paid.pk)):
        response = client.get(reverse("web-customers"), {"q": query})
        assert response["Location"] == reverse("web-customer", args=[paid.pk]), query  # one match: open it
    assert "No customer matches." in client.get(reverse("web-customers"), {"q": "nobody"}).content.decode()


def test_the_customer_page_says_why_they_have_access(client: Client, staff: dict[str, Any], paid: Customer) -> None:
    as_role(client, staff, "viewer")
    page = client.get(reverse("web-customer", args=[paid.pk])).content.decode()
    assert "Why does this person (not) have access?" in page
    assert "Has access to: community (rules v1)" in page
    assert "checkout_session <code>cs_test_" in page and "(current)" in page  # the Stripe timeline
    assert "→ active" in page  # history
    assert "circle.sync" in page and "kit.sync" in page
    assert "tags: 501, 502" in page and "spaces: 101, 102" in page  # what Kit and Circle were given
    assert "Save override" not in page  # viewers see no forms


def test_grant_with_expiry_recomputes_access_and_audits(client: Client, staff: dict[str, Any], paid: Customer) -> None:
    as_role(client, staff, "operator")
    page = client.post(reverse("web-customer-override", args=[paid.pk]),
                       {"action": "grant", "entitlement": "course", "reason": "VIP", "expires": "2099-12-31"},
                       follow=True).content.decode()
    assert "Override #" in page and "grant course" in page
    override = Override.objects.get()
    assert (override.action, override.name, override.created_by, override.expires_at.year) == ("grant", "course", "operator", 2099)
    assert paid.active_entitlements().filter(name="course").exists()
    entry = AuditEntry.objects.get(action="override_grant")
    assert (entry.actor, entry.target, entry.reason) == ("operator", f"customer:{paid.pk}", "VIP")


def test_an_override_needs_a_reason_and_a_known_entitlement(client: Client, staff: dict[str, Any], paid: Customer) -> None:
    as_role(client, staff, "operator")
    url = reverse("web-customer-override", args=[paid.pk])
    page = client.post(url, {"action": "revoke", "entitlement": "community", "reason": ""}, follow=True).content.decode()
    assert "Nothing changed" in page and "reason" in page
    page = client.post(url, {"action": "grant", "entitlement": "gold", "reason": "x"}, follow=True).content.decode()
    assert "Nothing changed" in page
    page = client.post(url, {"action": "grant", "entitlement": "course", "reason": "x", "expires": "2001-01-01"},
                       follow=True).content.decode()
    assert "the expiry is in the past" in page
    assert not Override.objects.exists() and not AuditEntry.objects.filter(action__startswith="override").exists()


def test_revoke_then_remove_restores_paid_access(client: Client, staff: dict[str, Any], paid: Customer) -> None:
    as_role(client, staff, "operator")
    client.post(reverse("web-customer-override", args=[paid.pk]),
                {"action": "revoke", "entitlement": "community", "reason": "abuse report"})
    assert not paid.active_entitlements().exists()
    page = client.get(reverse("web-customer", args=[paid.pk])).content.decode()
    assert "payment active but access &#x27;community&#x27; revoked by hand" in page
    override = Override.objects.get()
    client.post(reverse("web-override-remove", args=[override.pk]), {"reason": "cleared"})
    assert paid.active_entitlements().filter(name="community").exists()
    entry = AuditEntry.objects.get(action="override_removed")
    assert (entry.actor, entry.reason) == ("operator", "cleared")
    page = client.post(reverse("web-override-remove", args=[override.pk]), {"reason": "again"}, follow=True).content.decode()
    assert "already removed" in page


def test_removing_an_override_needs_a_reason(client: Client, staff: dict[str, Any], paid: Customer) -> None:
    override = Override.objects.create(customer=paid, name="course", action="grant", reason="x", created_by="t")
    as_role(client, staff, "operator")
    page = client.post(reverse("web-override-remove", args=[override.pk]), follow=True).content.decode()
    assert "a reason is required" in page
    assert Override.objects.get().removed_at is None
    assert Entitlement.objects.filter(customer=paid).exists()
