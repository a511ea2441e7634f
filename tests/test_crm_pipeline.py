"""With HubSpot configured, a purchase reaches the CRM through the normal pipeline."""

from __future__ import annotations

from typing import Any

import pytest

from frontdesk.ledger.enqueue import sync_providers
from frontdesk.ledger.models import Job

from .conftest import drain
from .test_delivery import buy
from .test_hubspot import hubspot  # noqa: F401  (fixture)

pytestmark = pytest.mark.django_db


def test_a_purchase_updates_the_hubspot_contact(client: Any, fakes: Any, rules: Any, hubspot: Any) -> None:  # noqa: F811
    assert "hubspot" in sync_providers()
    buy(client, "crm@example.com")
    drain()
    contact = hubspot.contact("crm@example.com")
    assert contact["properties"]["frontdesk_plan"] == "community"
    assert contact["properties"]["frontdesk_status"] == "active"
    assert Job.objects.get(kind="hubspot.sync").state == "succeeded"


def test_without_a_token_no_hubspot_job_is_queued(client: Any, fakes: Any, rules: Any, settings: Any) -> None:
    settings.HUBSPOT_ACCESS_TOKEN = ""
    buy(client, "nocrm@example.com")
    drain()
    assert not Job.objects.filter(kind="hubspot.sync").exists()
