"""The admin app in a real browser (Debian's chromium through Playwright, never `playwright
install`), against the live server, with the worker run in between steps by `drain()`.

Screenshots of the main screens at 1280x800 go to test-artifacts/screens/ (docs/screens/ holds
a copy made by hand for docs/admin.md)."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from frontdesk.customers.models import Customer
from frontdesk.intake.models import Event
from frontdesk.ledger.models import Job, JobState, WorkerHeartbeat

from ..conftest import drain, signed_post
from ..test_delivery import buy
from .conftest import PASSWORD

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SCREENS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screens"
INVALID = {"errors": ["Email address is invalid"]}


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        # `make test` installs it; a missing browser must fail, not hide the browser tests.
        pytest.fail("Debian's chromium is not installed at /usr/bin/chromium: run `make test` "
                    "(it installs it) or `apt-get install chromium`")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the test's own ORM calls
    # (fixtures, drain()) are still plain synchronous code.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as p:
            chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
            yield chromium
            chromium.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def page(browser: Any, live_server: Any, staff: dict[str, Any]) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 800}, base_url=live_server.url)
    tab = context.new_page()
    tab.set_default_timeout(15_000)
    problems: list[str] = []
    tab.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    tab.on("pageerror", lambda e: problems.append(str(e)))
    tab.on("response", lambda r: problems.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    tab.problems = problems
    yield tab
    context.close()
    # A Content-Security-Policy violation or a script error shows up in the console.
    assert problems == [], problems


def sign_in(page: Any, who: str = "operator") -> None:
    page.goto("/")
    page.get_by_label("User name").fill(who)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="What broke, who was affected, what happens next").wait_for()


def test_find_a_failed_job_on_the_dashboard_retry_it_and_see_it_succeed(
        page: Any, client: Any, fakes: Any, rules: Any) -> None:
    fakes.kit.fail(422, path="/v4/subscribers", method="POST", body=INVALID)
    buy(client, "browser@example.com")
    drain()
    sign_in(page)
    review = page.locator("section", has=page.get_by_role("heading", name=re.compile("Review queue")))
    review.get_by_role("link", name="1", exact=True).last.click()  # kit_invalid_email: 1
    assert "state=needs_review" in page.url and "reason=kit_invalid_email" in page.url
    job = Job.objects.get(state=JobState.NEEDS_REVIEW)
    page.get_by_role("link", name=str(job.pk), exact=True).click()
    page.get_by_text("needs review: kit_invalid_email").first.wait_for()
    fakes.kit.clear_faults()  # the address was fixed
    page.get_by_role("button", name="Retry now").click()
    page.get_by_text(f"Job {job.pk} is queued again").wait_for()
    drain()
    page.reload()
    page.locator(".state-succeeded").first.wait_for()
    assert Job.objects.get(pk=job.pk).state == JobState.SUCCEEDED


def test_grant_an_override_and_find_it_in_the_audit_log(page: Any, client: Any, fakes: Any, rules: Any) -> None:
    buy(client, "vip@example.com")
    drain()
    sign_in(page)
    page.get_by_role("link", name="Customers").click()
    page.get_by_label(re.compile("E-mail, name")).fill("vip@")
    page.get_by_role("button", name="Search").click()
    page.get_by_role("heading", name=re.compile("vip@example.com")).wait_for()  # one match opens it
    form = page.locator("form", has=page.get_by_role("button", name="Save override"))
    form.locator("select[name=action]").select_option("grant")
    form.locator("select[name=entitlement]").select_option("course")
    form.locator("input[name=reason]").fill("VIP from the browser")
    form.get_by_role("button", name="Save override").click()
    page.get_by_text("grant course").first.wait_for()
    page.get_by_role("link", name="Audit log").click()
    page.locator("select[name=action]").select_option("override_grant")
    page.get_by_role("button", name="Filter").click()
    row = page.locator("tr", has_text="VIP from the browser")
    row.wait_for()
    customer = Customer.objects.get(email="vip@example.com")
    assert "operator" in row.inner_text() and f"customer:{customer.pk}" in row.inner_text()


def test_a_test_event_is_followed_live_until_every_job_is_final(page: Any, fakes: Any, rules: Any) -> None:
    sign_in(page)
    page.get_by_role("link", name="Test event").click()
    page.get_by_label("E-mail").fill("live@example.com")
    page.get_by_role("button", name="Send").click()
    page.get_by_text("Refreshing every second").wait_for()
    drain()
    page.get_by_text("Every step is final.").wait_for()  # htmx polled and swapped the steps
    assert page.locator("#progress .state-succeeded").count() == 3


def test_an_admin_previews_and_applies_new_rules(page: Any, rules: Any) -> None:
    from frontdesk.rules.models import RulesVersion

    from .test_rules import NEW_RULES

    sign_in(page, "admin")
    page.get_by_role("link", name="Rules").click()
    page.get_by_role("link", name="Load a new version…").click()
    page.locator("textarea[name=content]").fill(NEW_RULES)
    page.get_by_role("button", name="Preview").click()
    page.get_by_text("~ mapping price price_community").wait_for()
    page.locator("input[name=reason][required]").fill("bundle the course")
    page.get_by_role("button", name="Apply as the next version").click()
    page.get_by_text("Rules v2 applied").wait_for()  # the browser's CRLF text matched the preview
    assert RulesVersion.current().content == NEW_RULES


def test_the_dashboard_fits_a_phone(browser: Any, live_server: Any, staff: dict[str, Any], rules: Any) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, base_url=live_server.url,
                                  device_scale_factor=2, is_mobile=True)
    phone = context.new_page()
    sign_in(phone)
    for path in ("/", "/jobs", "/customers", "/audit"):
        phone.goto(path)
        width = phone.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, (path, width)  # wide tables scroll inside their box, not the page
    SCREENS.mkdir(parents=True, exist_ok=True)
    phone.goto("/")
    phone.screenshot(path=str(SCREENS / "dashboard-phone.png"))
    context.close()


def test_screenshots_of_the_main_screens(page: Any, client: Any, fakes: Any, rules: Any) -> None:
    """Realistic data: purchases, one address Kit refuses, a rejected delivery, an override."""
    for email in ("ada@example.com", "grace@example.com", "linus@example.com"):
        buy(client, email)
    drain()
    fakes.kit.fail(422, path="/v4/subscribers", method="POST", count=1, body=INVALID)
    buy(client, "typo@exmaple.con")
    signed_post(client, {"id": "evt_forged", "type": "invoice.paid"}, secrets=["whsec_rotated"])
    drain()
    now = timezone.now()
    WorkerHeartbeat.objects.create(worker_id="web-1:4242", hostname="web-1", pid=4242, started_at=now, seen_at=now)
    from frontdesk.ops import actions

    ada = Customer.objects.get(email="ada@example.com")
    actions.grant_access(ada, "course", "sam", "Speaker at the meetup")
    drain()
    grace = Customer.objects.get(email="grace@example.com")
    actions.revoke_access(grace, "community", "kim", "Chargeback threatened on another card")
    drain()
    # Left waiting on purpose: a lane in trouble and an alert about the review queue.
    from frontdesk.alerts.models import Alert
    from frontdesk.ledger import providers
    from frontdesk.ledger.enqueue import request_sync

    request_sync("circle", Customer.objects.get(email="linus@example.com").pk, correlation_id="shot", cause="shot")
    providers.block("circle", "circuit_open", "server_error", "503 Service Unavailable", 90)
    Alert.objects.create(key="review_queue", rule="review_queue", summary="1 job(s) need review (kit_invalid_email).",
                         started_at=now, last_sent_at=now, notifications=1)
    failed = Job.objects.get(state=JobState.NEEDS_REVIEW)
    event = Event.objects.filter(type="checkout.session.completed").order_by("pk").first()

    sign_in(page, "admin")
    SCREENS.mkdir(parents=True, exist_ok=True)
    shots = {
        "dashboard": "/", "jobs": "/jobs", "job-detail": f"/jobs/{failed.pk}", "events": "/events",
        "event-detail": f"/events/{event.pk}", "customers": "/customers", "customer-detail": f"/customers/{ada.pk}",
        "audit-log": "/audit", "rules": "/rules", "doctor": "/doctor",
    }
    for name, path in shots.items():
        response = page.goto(path)
        assert response.status == 200, path
        page.screenshot(path=str(SCREENS / f"{name}.png"))
    assert {p.stem for p in SCREENS.glob("*.png")} >= set(shots)
    if os.environ.get("FRONTDESK_UPDATE_SCREENS"):  # refresh the copies the docs show
        docs = Path(__file__).resolve().parents[2] / "docs" / "screens"
        docs.mkdir(exist_ok=True)
        for png in SCREENS.glob("*.png"):
            shutil.copy(png, docs / png.name)
