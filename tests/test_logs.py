"""The logs of a whole end-to-end run hold no secret and no e-mail address."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from frontdesk.intake import signature

from . import stripe_events as se
from .conftest import PYTHON, RULES_FILE
from .test_run import ROOT, free_port_block

pytestmark = pytest.mark.slow

SECRETS = {
    "STRIPE_WEBHOOK_SECRET": "whsec_logscan_0123456789abcdef",
    "STRIPE_API_KEY": "sk_test_logscan_0123456789abcdef",
    "CIRCLE_API_TOKEN": "circle-logscan-0123456789abcdef",
    "KIT_API_KEY": "kit-logscan-0123456789abcdef",
    "FRONTDESK_SECRET_KEY": "django-logscan-0123456789abcdef-0123456789abcdef",
    "FRONTDESK_METRICS_TOKEN": "metrics-logscan-0123456789abcdef",
}
EMAILS = ["Scan.Person@Example.com", "second.person@example.org", "refused.person@example.net"]


def test_a_full_run_logs_correlation_ids_but_no_secret_or_email(tmp_path: Path) -> None:
    from frontdesk.fakes.circle import FakeCircle
    from frontdesk.fakes.kit import FakeKit
    from frontdesk.fakes.stripe import FakeStripe
    from frontdesk.ops.sandbox import seed
    from frontdesk.rules.schema import parse

    circle = FakeCircle(token=SECRETS["CIRCLE_API_TOKEN"]).start()
    kit = FakeKit(api_key=SECRETS["KIT_API_KEY"]).start()
    stripe = FakeStripe(api_key=SECRETS["STRIPE_API_KEY"]).start()
    seed({"circle": circle, "kit": kit}, parse(RULES_FILE.read_text()))
    base = free_port_block(1)
    bind = f"127.0.0.1:{base}"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("FRONTDESK_", "STRIPE_", "CIRCLE_", "KIT_", "DATABASE_URL"))}
    env.update(SECRETS, FRONTDESK_VAR_DIR=str(tmp_path), FRONTDESK_RULES=str(RULES_FILE),
               FRONTDESK_LOG_FORMAT="json", FRONTDESK_LOG_LEVEL="DEBUG",
               CIRCLE_API_URL=circle.url, KIT_API_URL=kit.url, STRIPE_API_URL=stripe.url,
               FRONTDESK_RETRY_BASE="0.05", FRONTDESK_RETRY_CAP="0.2", FRONTDESK_WORKER_POLL="0.05",
               FRONTDESK_CIRCUIT_THRESHOLD="100")
    log_file = tmp_path / "run.log"
    with log_file.open("wb") as out:
        proc = subprocess.Popen([PYTHON, "-m", "frontdesk.cli", "run", "--bind", bind, "--web-workers", "1"],
                                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        url = f"http://{bind}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        kit.fail(422, path="/v4/subscribers", method="POST", count=1, body={"errors": ["Email address is invalid"]})
        circle.fail(500, count=2)

        def post(payload: dict[str, Any], secret: str = SECRETS["STRIPE_WEBHOOK_SECRET"]) -> httpx.Response:
            body = json.dumps(payload).encode()
            return httpx.post(f"{url}/webhooks/stripe", content=body, timeout=10,
                              headers={"Stripe-Signature": signature.header(body, [secret]),
                                       "Content-Type": "application/json"})

        for i, email in enumerate(EMAILS):
            items = [se.line_item("price_community", "prod_community")]
            session = se.checkout_session(email, line_items=items if i else None, customer=se.unique("cus"))
            if not i:  # the first one needs the Stripe API for its line items
                stripe.add_checkout_session(session, items)
            event = se.event("checkout.session.completed", session)
            assert post(event).status_code == 200
            assert post(event).json()["status"] == "duplicate"
        assert post({"id": "evt_x", "type": "invoice.paid", "email": EMAILS[0]}, "whsec_wrong").status_code == 400
        httpx.get(f"{url}/metrics", headers={"Authorization": f"Bearer {SECRETS['FRONTDESK_METRICS_TOKEN']}"})
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            if len([c for c in kit.calls if c.path.startswith("/v4/sequences") and c.status in (200, 201)]) >= 2 \
                    and circle.member(EMAILS[0]) is not None:
                break
            time.sleep(0.3)
        time.sleep(1)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=45)
        for fake in (circle, kit, stripe):
            fake.stop()
    text = log_file.read_text()
    assert '"event": "job_finished"' in text and '"correlation_id"' in text  # the logs are real
    assert "kit_invalid_email" in text and "webhook_rejected" in text
    leaks = [s for s in SECRETS.values() if s in text]
    leaks += [e for e in EMAILS if e in text or e.lower() in text]
    leaks += [e.split("@")[0].lower() for e in EMAILS if e.split("@")[0].lower() in text.lower()]
    assert leaks == [], f"found in the logs: {leaks}"
    # Every job line carries the correlation id of its event.
    for line in text.splitlines():
        if line.startswith("{") and '"job_id"' in line:
            assert '"correlation_id"' in line, line
