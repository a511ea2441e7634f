"""No configured secret and no e-mail address reaches an error answer, whatever the cause: the
intake's own refusals and Django's default error pages with ``DEBUG`` off."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from unittest import mock

import pytest
from django.db import OperationalError
from django.test import Client

from frontdesk.intake import signature, throttling

from .. import stripe_events as se
from .urls import EMAILS, secrets

pytestmark = pytest.mark.django_db

WEBHOOK_SECRET = "whsec_leakscan_0123456789abcdef"
CONFIGURED = {
    "SECRET_KEY": "django-leakscan-0123456789abcdef-0123456789abcdef-0123",
    "STRIPE_WEBHOOK_SECRETS": ["whsec_leakscan_old_0123456789", WEBHOOK_SECRET],
    "STRIPE_API_KEY": "sk_test_leakscan_0123456789abcdef",
    "CIRCLE_API_TOKEN": "circle-leakscan-0123456789abcdef",
    "KIT_API_KEY": "kit-leakscan-0123456789abcdef",
    "HUBSPOT_ACCESS_TOKEN": "pat-na1-leakscan-0123456789abcdef",
    "METRICS_TOKEN": "metrics-leakscan-0123456789abcdef",
}


@pytest.fixture(autouse=True)
def production_like(settings: Any) -> Iterator[None]:
    for name, value in CONFIGURED.items():
        setattr(settings, name, value)
    settings.DEBUG = False
    settings.ROOT_URLCONF = "tests.security.urls"
    settings.ALLOWED_HOSTS = ["testserver", "frontdesk.example.com"]
    settings.ALERTS = {**settings.ALERTS, "webhook_secret": "whsec_alertleak_0123456789abcdef",
                       "slack_url": "https://hooks.slack.com/services/T0LEAK/B0LEAK/slackleak0123456789",
                       "smtp_url": "smtp://mailer:smtpleak0123456789@mail.example.com:587"}
    settings.SUPPORT = {**settings.SUPPORT,
                        "slack_url": "https://hooks.slack.com/services/T0LEAK/B1LEAK/supportleak0123"}
    settings.OUTBOUND_WEBHOOK = {**settings.OUTBOUND_WEBHOOK, "secret": "whsec_outboundleak_0123456789abcdef"}
    settings.INTAKE_RATE_LIMIT = None
    throttling.reset()
    yield
    throttling.reset()


@pytest.fixture
def anonymous() -> Client:
    # As a browser or Stripe sees it: exceptions become pages, not test failures.
    return Client(raise_request_exception=False)


def assert_clean(response: Any, status: int) -> None:
    assert response.status_code == status, response.content[:300]
    shown = response.content.decode("utf-8", "replace") + "\n" + "\n".join(
        f"{name}: {value}" for name, value in response.headers.items())
    leaked = [value for value in secrets() if value in shown]
    leaked += [email for email in EMAILS if email.lower() in shown.lower()]
    # Parts of secrets give them away too: a key's distinctive middle, a password in a URL.
    leaked += [part for part in ("leakscan", "alertleak", "slackleak", "supportleak", "outboundleak",
                                 "smtpleak") if part in shown]
    assert not leaked, f"{status} answer shows {leaked}: {shown[:500]}"


def test_the_secrets_are_all_configured() -> None:
    assert len(secrets()) == 13  # the scan below looks for each of them


def test_the_scan_sees_a_leak_when_there_is_one(anonymous: Client, settings: Any) -> None:
    settings.DEBUG = True  # Django's debug page shows the exception message
    with pytest.raises(AssertionError, match="500 answer shows"):
        assert_clean(anonymous.get("/_boom/500"), 500)


def test_a_server_error_page_shows_neither_the_message_nor_the_secrets(anonymous: Client) -> None:
    assert_clean(anonymous.get("/_boom/500"), 500)
    assert_clean(anonymous.post("/_boom/500-database", {"email": EMAILS[0]}), 500)


# 403 is left out on purpose: the app's 403.html shows a PermissionDenied message, which the
# views write for people to read ("Your role does not allow this."). A real 403 is below (CSRF).
@pytest.mark.parametrize(("path", "status"), [("/_boom/400", 400), ("/_boom/404", 404)])
def test_default_error_pages_do_not_repeat_the_exception(anonymous: Client, path: str, status: int) -> None:
    assert_clean(anonymous.get(path, {"email": EMAILS[0]}), status)


def test_a_not_found_page_does_not_echo_the_path(anonymous: Client) -> None:
    assert_clean(anonymous.get(f"/customers/by-email/{EMAILS[0]}", {"token": CONFIGURED["STRIPE_API_KEY"]}), 404)


def test_a_bad_host_page_does_not_echo_the_host(anonymous: Client) -> None:
    assert_clean(anonymous.get("/healthz", HTTP_HOST=f"{EMAILS[1].replace('@', '.')}.invalid"), 400)


def test_a_failed_csrf_check_shows_nothing_posted(settings: Any) -> None:
    browser = Client(enforce_csrf_checks=True, raise_request_exception=False)
    response = browser.post("/login", {"username": EMAILS[0], "password": CONFIGURED["KIT_API_KEY"]})
    assert_clean(response, 403)


def test_a_wrong_method_page_shows_nothing(anonymous: Client) -> None:
    assert_clean(anonymous.get("/webhooks/stripe", {"email": EMAILS[0]}), 405)
    assert_clean(anonymous.post("/healthz", {"email": EMAILS[0]}), 405)


def test_metrics_refusals_show_no_token(anonymous: Client) -> None:
    assert_clean(anonymous.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {CONFIGURED['METRICS_TOKEN'][:-1]}"), 401)


def _event_for(email: str) -> bytes:
    session = se.checkout_session(email, line_items=[se.line_item("price_community", "prod_c")])
    return json.dumps(se.event("checkout.session.completed", session)).encode()


def intake(client: Client, body: bytes, header: str | None, **extra: Any) -> Any:
    if header is not None:
        extra["HTTP_STRIPE_SIGNATURE"] = header
    return client.post("/webhooks/stripe", data=body, content_type="application/json", **extra)


@pytest.mark.parametrize("case", ["unsigned", "wrong-secret", "secret-in-header", "stale", "not-json",
                                  "no-id", "bad-length"])
def test_intake_refusals_show_no_secret_or_email(anonymous: Client, case: str) -> None:
    body = _event_for(EMAILS[0])
    header: str | None = signature.header(body, [WEBHOOK_SECRET])
    extra: dict[str, Any] = {}
    if case == "unsigned":
        header = None
    elif case == "wrong-secret":
        header = signature.header(body, ["whsec_wrong"])
    elif case == "secret-in-header":
        header = f"t=1,v1={CONFIGURED['STRIPE_API_KEY']},v0={WEBHOOK_SECRET}"
    elif case == "stale":
        header = signature.header(body, [WEBHOOK_SECRET], timestamp=1)
    elif case == "not-json":
        body = EMAILS[0].encode() + b" " + WEBHOOK_SECRET.encode()
        header = signature.header(body, [WEBHOOK_SECRET])
    elif case == "no-id":
        body = json.dumps({"type": "invoice.paid", "email": EMAILS[0], "key": CONFIGURED["KIT_API_KEY"]}).encode()
        header = signature.header(body, [WEBHOOK_SECRET])
    elif case == "bad-length":
        extra["CONTENT_LENGTH"] = EMAILS[0]
    assert_clean(intake(anonymous, body, header, **extra), 400)


def test_an_oversized_intake_body_shows_nothing(anonymous: Client) -> None:
    body = json.dumps({"email": EMAILS[0], "pad": "x" * (256 * 1024)}).encode()
    assert_clean(intake(anonymous, body, signature.header(body, [WEBHOOK_SECRET])), 413)


def test_a_rate_limited_intake_shows_nothing(anonymous: Client, settings: Any) -> None:
    settings.INTAKE_RATE_LIMIT = (1, 60)
    body = _event_for(EMAILS[1])
    assert intake(anonymous, body, signature.header(body, [WEBHOOK_SECRET])).status_code == 200
    # The duplicate is the wasted request that uses up the limit.
    assert intake(anonymous, body, signature.header(body, [WEBHOOK_SECRET])).json()["status"] == "duplicate"
    assert_clean(intake(anonymous, body, signature.header(body, [WEBHOOK_SECRET])), 429)


def test_a_database_failure_at_intake_shows_no_connection_details(anonymous: Client) -> None:
    failure = OperationalError(f"connection to postgres://frontdesk:{CONFIGURED['SECRET_KEY']}@db failed "
                               f"while storing {EMAILS[0]}")
    body = _event_for(EMAILS[0])
    with mock.patch("frontdesk.intake.storage.store", side_effect=failure):
        assert_clean(intake(anonymous, body, signature.header(body, [WEBHOOK_SECRET])), 503)


def test_an_unexpected_error_at_intake_shows_a_bare_500(anonymous: Client) -> None:
    body = _event_for(EMAILS[0])
    with mock.patch("frontdesk.intake.storage.store", side_effect=RuntimeError(" ".join([*secrets(), *EMAILS]))):
        assert_clean(intake(anonymous, body, signature.header(body, [WEBHOOK_SECRET])), 500)
