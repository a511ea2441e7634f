"""No page shows a secret: webhook secrets, API keys, tokens and the secret key stay off every
screen, even when they leak into a payload, an error message or a provider's answer."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from django.conf import settings
from django.test import Client

from frontdesk.ledger import providers
from frontdesk.ledger.models import Attempt, Job

from .. import stripe_events as se
from ..conftest import drain, signed_post
from ..test_delivery import buy
from .conftest import as_role
from .test_access import EXPECTED, url_for

pytestmark = pytest.mark.django_db


def secrets() -> list[str]:
    values = [settings.SECRET_KEY, settings.STRIPE_API_KEY, settings.CIRCLE_API_TOKEN, settings.KIT_API_KEY,
              settings.METRICS_TOKEN, settings.ALERTS["webhook_secret"], settings.SUPPORT["slack_url"],
              *settings.STRIPE_WEBHOOK_SECRETS]
    assert all(values), "every secret must be set for this test to mean something"
    return values


def test_no_page_shows_a_secret(client: Client, staff: dict[str, Any], fakes: Any, world: SimpleNamespace,
                                settings: Any) -> None:
    fakes.kit.fail(422, path="/v4/subscribers", method="POST", count=1, body={"errors": ["Email address is invalid"]})
    buy(client, "leaky@example.com")
    # A careless sender pastes keys into metadata; a provider echoes a token in its error.
    session = se.checkout_session("meta@example.com", line_items=[se.line_item("price_community", "prod_community")])
    session["metadata"] = {"note": f"{settings.STRIPE_API_KEY} {settings.STRIPE_WEBHOOK_SECRETS[0]}",
                           "api_key": settings.KIT_API_KEY}
    signed_post(client, se.event("checkout.session.completed", session))
    drain()
    # Set after the run, so no notice tries to reach them.
    settings.METRICS_TOKEN = "metrics-token-0f9e8d7c"
    settings.ALERTS = {**settings.ALERTS, "webhook_secret": "whsec_YWxlcnRzZWNyZXQ="}
    settings.SUPPORT = {**settings.SUPPORT, "slack_url": "https://hooks.slack.example/services/T0/B0/s3cr3t"}
    Job.objects.filter(state="needs_review").update(last_error=f"echo: Token {settings.CIRCLE_API_TOKEN}")
    Attempt.objects.filter(outcome="permanent").update(message=f"key={settings.KIT_API_KEY}")
    providers.block("circle", "paused", "circle_unauthorized", f"refused {settings.CIRCLE_API_TOKEN}", 60)

    as_role(client, staff, "admin")
    urls = [url_for(name, world) for name, (_, method) in EXPECTED.items() if method == "GET"]
    urls += [f"/jobs/{j.pk}" for j in Job.objects.all()] + [f"/events/{e}" for e in
                                                             Job.objects.exclude(event=None).values_list("event", flat=True)]
    assert len(urls) > 20
    for url in urls:
        page = client.get(url)
        assert page.status_code == 200, url
        body = page.content.decode()
        for secret in secrets():
            assert secret not in body, (url, secret[:6])
    assert "[redacted]" in client.get(f"/jobs/{Job.objects.get(state='needs_review').pk}").content.decode()
