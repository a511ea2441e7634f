"""The intake log and the audit log, with their filters."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from frontdesk.audit.models import record

from .. import stripe_events as se
from ..conftest import signed_post
from .conftest import as_role

pytestmark = pytest.mark.django_db


def test_the_intake_log_filters_by_outcome_and_reason(client: Client, staff: dict[str, Any], rules: Any) -> None:
    good = se.event("product.created", {"id": "prod_1", "object": "product"})
    signed_post(client, good)
    signed_post(client, {"id": "evt_bad", "type": "invoice.paid"}, secrets=["whsec_wrong"])
    client.post("/webhooks/stripe", data=b"{}", content_type="application/json")
    as_role(client, staff, "viewer")
    page = client.get(reverse("web-intake")).content.decode()
    assert "· 3 rows" in page and good["id"] in page
    assert "· 2 rows" in client.get(reverse("web-intake"), {"outcome": "rejected"}).content.decode()
    page = client.get(reverse("web-intake"), {"reason": "bad_signature"}).content.decode()
    assert "· 1 row" in page and "evt_bad" not in page  # a rejected request's event id is not trusted
    page = client.get(reverse("web-intake"), {"event": good["id"], "since_hours": "1"}).content.decode()
    assert "· 1 row" in page


def test_the_audit_log_filters_by_actor_and_action(client: Client, staff: dict[str, Any], rules: Any) -> None:
    record("sam", "job_retried", "job:1", reason="fixed")
    record("kim", "override_grant", "customer:2", reason="VIP")
    record("cli", "user_created", "founder")
    as_role(client, staff, "viewer")
    page = client.get(reverse("web-audit")).content.decode()
    assert "· 3 rows" in page
    assert f'<a href="{reverse("web-customer", args=[2])}">customer:2</a>' in page
    assert f'<a href="{reverse("web-job", args=[1])}">job:1</a>' in page
    page = client.get(reverse("web-audit"), {"actor": "kim"}).content.decode()
    assert "· 1 row" in page and "VIP" in page and "fixed" not in page
    page = client.get(reverse("web-audit"), {"action": "job_retried"}).content.decode()
    assert "· 1 row" in page and "fixed" in page
