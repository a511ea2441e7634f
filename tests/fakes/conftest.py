"""Fixtures for the fake-provider tests: each test gets freshly started fakes and a client.

These tests need no Django: run them with ``pytest tests/fakes -p no:django``.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from frontdesk.fakes import FakeCircle, FakeKit, FakeStripe

CIRCLE_AUTH = {"Authorization": "Token circle-test-token"}
KIT_AUTH = {"X-Kit-Api-Key": "kit-test-key"}
STRIPE_AUTH = {"Authorization": "Bearer sk_test_frontdesk"}


@pytest.fixture
def circle() -> Iterator[FakeCircle]:
    with FakeCircle() as fake:
        yield fake


@pytest.fixture
def kit() -> Iterator[FakeKit]:
    with FakeKit(oauth_tokens=("oauth-token",)) as fake:
        yield fake


@pytest.fixture
def stripe() -> Iterator[FakeStripe]:
    with FakeStripe() as fake:
        yield fake


@pytest.fixture
def circle_api(circle: FakeCircle) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=circle.url + "/api/admin/v2", headers=CIRCLE_AUTH,
                      timeout=5) as client:
        yield client


@pytest.fixture
def kit_api(kit: FakeKit) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=kit.url, headers=KIT_AUTH, timeout=5) as client:
        yield client


@pytest.fixture
def stripe_api(stripe: FakeStripe) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stripe.url, headers=STRIPE_AUTH, timeout=5) as client:
        yield client
