"""Shared pieces of the admin app's tests: one user per role, and a small world of rows for
pages that show one object."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from frontdesk.web.roles import set_role

PASSWORD = "a-long-password-123"
ROLES = ("viewer", "operator", "admin")


@pytest.fixture(autouse=True)
def fast_passwords(settings: Any) -> None:
    # The production hasher takes ~0.3 s a password on purpose; tests create many users.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def make_user(name: str, role: str | None) -> Any:
    user = get_user_model().objects.create_user(name, f"{name}@staff.example", PASSWORD)
    if role:
        set_role(user, role)
    return user


@pytest.fixture
def staff(db: None) -> dict[str, Any]:
    return {role: make_user(role, role) for role in ROLES}


def as_role(client: Any, staff: dict[str, Any], role: str) -> Any:
    client.force_login(staff[role])
    return client


@pytest.fixture
def world(rules: Any) -> SimpleNamespace:
    """One of each object a detail page shows, made directly (no worker, no fakes)."""
    import json

    from frontdesk.customers.models import Customer, Override
    from frontdesk.intake.models import Event
    from frontdesk.ledger.enqueue import enqueue
    from tests import stripe_events as se

    customer = Customer.objects.create(email="world@example.com", name="World Person", stripe_customer_id="cus_world")
    payload = se.event("checkout.session.completed", se.checkout_session(
        "world@example.com", line_items=[se.line_item("price_community", "prod_community")], customer="cus_world"))
    event = Event.objects.create(provider="stripe", event_id=payload["id"], type=payload["type"],
                                 received_at=timezone.now(), correlation_id="corrworld", payload=json.dumps(payload),
                                 status=Event.PROCESSED, customer=customer)
    job = enqueue("kit.sync", "kit", idempotency_key="world:kit", correlation_id="corrworld", customer_id=customer.pk,
                  event_id=event.pk)
    override = Override.objects.create(customer=customer, name="community", action=Override.GRANT,
                                       reason="world", created_by="test")
    other = make_user("someone", "viewer")
    return SimpleNamespace(customer=customer, event=event, job=job, override=override, user=other, rules=rules)
