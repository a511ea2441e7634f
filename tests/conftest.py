from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from django.db import connection

from frontdesk.intake import signature
from frontdesk.ledger.models import Job, JobState
from frontdesk.ledger.worker import Worker

WEBHOOK_SECRET = "whsec_test_secret"
RULES_FILE = Path(__file__).parent / "rules.yaml"
FAST = {  # retry and breaker timings shrunk so recovery paths run in seconds
    "FRONTDESK_RETRY_BASE": "0.05", "FRONTDESK_RETRY_CAP": "0.4", "FRONTDESK_CIRCUIT_COOLDOWN": "0.3",
    "FRONTDESK_AUTH_PAUSE": "0.5", "FRONTDESK_WORKER_POLL": "0.05",
    "CIRCLE_RATE_LIMIT": "1000/1", "KIT_RATE_LIMIT": "1000/1", "STRIPE_RATE_LIMIT": "1000/1",
    "CIRCLE_RATE_LIMIT_WAIT": "0.3", "KIT_RATE_LIMIT_WAIT": "0.3", "STRIPE_RATE_LIMIT_WAIT": "0.3",
    "HUBSPOT_RATE_LIMIT": "1000/1", "HUBSPOT_RATE_LIMIT_WAIT": "0.3",
    # Worker processes in tests run no scheduled reconciliation sweep: it would queue its own
    # repair jobs beside the ones a test counts (reconciliation has its own tests).
    "RECONCILE_INTERVAL": "0",
}


@pytest.fixture(autouse=True)
def fast_settings(settings: Any) -> None:
    settings.STRIPE_WEBHOOK_SECRETS = [WEBHOOK_SECRET]
    settings.RETRY_BASE_SECONDS = 0.05
    settings.RETRY_CAP_SECONDS = 0.4
    settings.CIRCUIT_COOLDOWN_SECONDS = 0.3
    settings.AUTH_PAUSE_SECONDS = 0.5
    settings.WORKER_POLL_SECONDS = 0.05
    settings.PROVIDERS = {p: {"rate_limit": (1000, 1.0), "retry_max_age": 3600.0, "rate_limit_wait": 0.3}
                          for p in ("circle", "kit", "stripe", "hubspot")}


@pytest.fixture
def fakes(settings: Any) -> Iterator[SimpleNamespace]:
    from frontdesk.fakes.circle import FakeCircle
    from frontdesk.fakes.kit import FakeKit
    from frontdesk.fakes.stripe import FakeStripe
    from frontdesk.ops.sandbox import seed
    from frontdesk.rules.schema import parse

    # No rate limits at the fakes by default: tests of rate limiting set their own.
    ns = SimpleNamespace(circle=FakeCircle(rate_limit=None).start(), kit=FakeKit(rate_limit=None).start(),
                         stripe=FakeStripe(rate_limit=None).start())
    seed(vars(ns), parse(RULES_FILE.read_text()))
    settings.CIRCLE_API_URL, settings.CIRCLE_API_TOKEN = ns.circle.url, "circle-test-token"
    settings.KIT_API_URL, settings.KIT_API_KEY = ns.kit.url, "kit-test-key"
    settings.STRIPE_API_URL, settings.STRIPE_API_KEY = ns.stripe.url, "sk_test_frontdesk"
    yield ns
    for fake in (ns.circle, ns.kit, ns.stripe):
        fake.stop()


@pytest.fixture
def rules(db: None) -> Any:
    from frontdesk.rules.loading import load_file

    return load_file(RULES_FILE)[0]


def signed_post(client: Any, payload: dict[str, Any] | bytes, *, secrets: list[str] | None = None,
                timestamp: int | None = None, **extra: Any) -> Any:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    header = signature.header(body, secrets or [WEBHOOK_SECRET], timestamp)
    return client.post("/webhooks/stripe", data=body, content_type="application/json",
                       HTTP_STRIPE_SIGNATURE=header, **extra)


def drain(worker: Worker | None = None, timeout: float = 20.0) -> Worker:
    """Run due jobs in this process until none is pending or running."""
    worker = worker or Worker(concurrency=1, worker_id="test-worker")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if worker.run_one():
            continue
        if not Job.objects.filter(state__in=[JobState.QUEUED, JobState.RETRYING, JobState.RUNNING]).exists():
            return worker
        time.sleep(0.02)
    from collections import Counter

    states = Counter(Job.objects.exclude(state="succeeded").values_list("kind", "state", "reason_code"))
    raise AssertionError(f"jobs did not finish in {timeout} s: {dict(states)}")


def database_url() -> str:
    """The test database, as a URL a subprocess (a worker) can connect to."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    user = db.get("USER") or "postgres"
    return f"postgres://{user}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


def subprocess_env(fakes: SimpleNamespace | None = None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CIRCLE_", "KIT_", "STRIPE_", "HUBSPOT_"))}
    env.update(FAST, DATABASE_URL=database_url(), STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET,
               FRONTDESK_LOG_FORMAT="json", FRONTDESK_LEASE_SECONDS="3")
    if fakes is not None:
        env.update(CIRCLE_API_URL=fakes.circle.url, CIRCLE_API_TOKEN="circle-test-token",
                   KIT_API_URL=fakes.kit.url, KIT_API_KEY="kit-test-key",
                   STRIPE_API_URL=fakes.stripe.url, STRIPE_API_KEY="sk_test_frontdesk")
    env.update(extra)
    return env


PYTHON = sys.executable
