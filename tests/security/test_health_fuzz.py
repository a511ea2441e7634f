"""The health and metrics endpoints under any method, query string and headers: never a 5xx."""

from __future__ import annotations

from typing import Any

import pytest
from django.utils import timezone
from hypothesis import HealthCheck, event, example, given, settings as hsettings, strategies as st

from frontdesk.ledger.models import WorkerHeartbeat

pytestmark = pytest.mark.django_db

FUZZ = hsettings(max_examples=100, deadline=None, database=None,
                 suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
TOKEN = "metrics-fuzz-0123456789abcdef"

methods = st.sampled_from(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT",
                           "PROPFIND"]) | st.from_regex(r"\A[A-Za-z]{1,12}\Z")
# What a WSGI server hands over: any bytes, read as Latin-1.
query_strings = st.binary(max_size=300).map(lambda b: b.decode("latin-1")) | st.from_regex(
    r"\A([a-z%0-9=&;+._\[\]-]{0,20}){0,8}\Z")
header_values = st.binary(max_size=200).map(lambda b: b.decode("latin-1")) | st.sampled_from(
    [f"Bearer {TOKEN}", f"Bearer {TOKEN}x", "Bearer", "Basic Zm9vOmJhcg==", "Bearer \u00ff" * 50])


@pytest.fixture
def ready(settings: Any) -> None:
    # /readyz answers 503 by design when no worker is alive; with one, any 5xx is a fault.
    now = timezone.now()
    WorkerHeartbeat.objects.create(worker_id="fuzz", hostname="fuzz", pid=1, started_at=now, seen_at=now)
    settings.METRICS_TOKEN = TOKEN


@FUZZ
@given(path=st.sampled_from(["/healthz", "/readyz", "/metrics", "/healthz/", "/readyz/.."]),
       method=st.just("GET") | methods, query=query_strings,
       authorization=st.sampled_from([None, f"Bearer {TOKEN}"]) | header_values,
       accept=st.none() | header_values, body=st.binary(max_size=200))
@example(path="/metrics", method="GET", query="a=%ff&&=", authorization=f"Bearer {TOKEN}", accept="*/*", body=b"")
@example(path="/readyz", method="GET", query="\x00\xff", authorization=None, accept=None, body=b"x")
def test_health_endpoints_never_answer_5xx(client: Any, ready: None, path: str, method: str, query: str,
                                           authorization: str | None, accept: str | None, body: bytes) -> None:
    extra = {"QUERY_STRING": query}
    if authorization is not None:
        extra["HTTP_AUTHORIZATION"] = authorization
    if accept is not None:
        extra["HTTP_ACCEPT"] = accept
    response = client.generic(method, path, body, content_type="application/octet-stream", **extra)
    event(f"{path} {response.status_code}")
    assert response.status_code < 500, (method, path, response.status_code, response.content[:200])
    if response.status_code == 200 and path == "/metrics":
        assert authorization == f"Bearer {TOKEN}"


@FUZZ
@given(method=methods.filter(lambda m: m != "POST"), query=query_strings)
def test_the_intake_answers_other_methods_with_405(client: Any, method: str, query: str) -> None:
    response = client.generic(method, "/webhooks/stripe", QUERY_STRING=query)
    assert response.status_code == 405
