"""Duplicate deliveries racing each other through a real server."""

from __future__ import annotations

import json
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from frontdesk.intake import signature
from frontdesk.intake.models import Event, IntakeLog
from frontdesk.ledger.models import Job

from . import stripe_events as se
from .conftest import WEBHOOK_SECRET, drain

pytestmark = pytest.mark.django_db(transaction=True)


def test_twenty_events_delivered_twice_at_once_are_stored_and_acted_on_once(
        live_server: Any, fakes: Any, rules: Any) -> None:
    bodies = []
    for i in range(20):
        session = se.checkout_session(f"race{i}@example.com", customer=se.unique("cus"),
                                      line_items=[se.line_item("price_community", "prod_c")])
        bodies.append(json.dumps(se.event("checkout.session.completed", session)).encode())
    url = f"{live_server.url}/webhooks/stripe"

    def post(body: bytes) -> str:
        headers = {"Stripe-Signature": signature.header(body, [WEBHOOK_SECRET]), "Content-Type": "application/json"}
        response = httpx.post(url, content=body, headers=headers, timeout=30)
        assert response.status_code == 200, response.text
        return str(response.json()["status"])

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = Counter(pool.map(post, [b for b in bodies for _ in range(2)]))
    assert outcomes == {"stored": 20, "duplicate": 20}
    assert Event.objects.count() == 20
    assert Job.objects.count() == 20
    assert IntakeLog.objects.filter(reason="duplicate").count() == 20
    drain()
    changes = Counter((c.method, c.path, json.dumps(c.body, sort_keys=True))
                      for c in fakes.circle.calls + fakes.kit.calls if c.changed)
    assert max(changes.values()) == 1
    assert len(fakes.circle.calls_to("/api/admin/v2/community_members", "POST")) == 20
