"""Schemathesis against ``POST /webhooks/stripe``, beside the Hypothesis fuzz in
test_hostile_intake.py: requests generated and mutated (positive and negative data: wrong types,
missing and extra fields, raw bytes, odd and extra headers) from an OpenAPI document of the
intake (intake_openapi.yaml), sent to the real Django WSGI application. Every answer is one of
the documented statuses with its documented JSON body, never a 5xx, and nothing is stored from
a request that is not correctly signed with the webhook secret."""

from __future__ import annotations

import ipaddress
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core import NotSet
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.transport.serialization import Binary

from frontdesk.intake import signature, throttling
from frontdesk.intake.models import Event, IntakeLog
from frontdesk.ledger.models import Job

from ..api.test_openapi import wsgi_app
from ..conftest import WEBHOOK_SECRET

pytestmark = pytest.mark.django_db

SPEC = Path(__file__).with_name("intake_openapi.yaml")
MAX_BODY = 256 * 1024
TOLERANCE = 300
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]
# Schemathesis's WSGI client sets no REMOTE_ADDR, and a request from no known address is neither
# rate limited nor looked at for X-Forwarded-For: come from a local proxy (trusted below).
PROXY = {"REMOTE_ADDR": "127.0.0.1"}
SIGNATURE_REASONS = {"missing_signature", "malformed_signature", "bad_signature"}


def fuzz_settings(examples: int) -> Any:
    # Bounded for 2 shared cores; no example database in the work tree.
    return hypothesis_settings(max_examples=examples, deadline=None, database=None,
                               suppress_health_check=list(HealthCheck))


@pytest.fixture(autouse=True)
def intake_settings(settings: Any) -> Iterator[None]:
    # Counted but never reached, so the limiter runs on every request without a 429; from a
    # trusted proxy, so the generated X-Forwarded-For decides the client address.
    settings.INTAKE_RATE_LIMIT = (100_000, 60)
    settings.TRUSTED_PROXIES = (ipaddress.ip_network("127.0.0.0/8"),)
    throttling.reset()
    yield
    throttling.reset()


@pytest.fixture
def app() -> Iterator[Any]:
    with wsgi_app() as application:
        yield application


@pytest.fixture
def operation(app: Any) -> Any:
    schema = schemathesis.openapi.from_path(SPEC)
    schema.validate()  # against the OpenAPI 3.1 meta-schema
    schema.app = app
    return schema["/webhooks/stripe"]["POST"]


def raw_body(case: Any, ensure_ascii: bool = True) -> bytes:
    """The bytes for a generated body: what gets signed and sent."""
    body = case.body
    if isinstance(body, NotSet):
        return b""
    if isinstance(body, Binary):
        return body.data
    if isinstance(body, bytes):
        return body
    # Strings may hold lone surrogates: their UTF-8-ish bytes are a wrong encoding to refuse.
    return json.dumps(body, ensure_ascii=ensure_ascii).encode("utf-8", "surrogatepass")


def refusal(body: bytes) -> str | None:
    """The reason the intake must refuse a correctly signed, fresh body for; None to accept it.
    Stripe's rules as the intake applies them: UTF-8 JSON, an object, not a thin event, and an
    id (≤ 255) and a type (≤ 100) that are non-empty printable strings."""
    try:
        data = json.loads(body.decode("utf-8"))
    except (ValueError, RecursionError):
        return "invalid_json"
    if not isinstance(data, dict):
        return "invalid_json"
    if data.get("object") == "v2.core.event":
        return "thin_event"
    for field, limit in (("id", 255), ("type", 100)):
        value = data.get(field)
        if not isinstance(value, str) or not value or len(value) > limit or not value.isprintable():
            return f"missing_{field}"
    return None


def assert_refused_and_logged(response: Any, statuses: tuple[int, ...] = (400,)) -> dict[str, Any]:
    assert response.status_code in statuses, (response.status_code, response.text[:300])
    assert response.headers["content-type"] == ["application/json"]
    answer = response.json()
    assert answer["error"], answer
    row = IntakeLog.objects.order_by("-pk").first()
    assert row is not None and (row.status_code, row.reason) == (response.status_code, answer["error"])
    return answer


# --- Unsigned: whatever Schemathesis sends is refused, logged, and stores nothing ------------

@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_generated_requests_are_refused_logged_and_store_nothing(operation: Any, mode: GenerationMode) -> None:
    # Schemathesis cannot sign: its own Stripe-Signature headers (well-formed ones from the
    # pattern, garbage, none) and bodies (Stripe-shaped, wrong types, raw bytes) must all fail.
    runs = 0

    @fuzz_settings(100)
    @given(case=operation.as_strategy(mode))
    def run(case: Any) -> None:
        nonlocal runs
        runs += 1
        response = case.call(environ_base=PROXY)
        case.validate_response(response, checks=[*CHECKS, negative_data_rejection])
        answer = assert_refused_and_logged(response)
        assert answer["error"] in SIGNATURE_REASONS, answer
        assert not Event.objects.exists() and not Job.objects.exists(), case.as_curl_command()

    run()
    assert runs >= 50
    assert not Event.objects.exists()
    assert not Job.objects.exists()
    assert IntakeLog.objects.count() == runs
    assert set(IntakeLog.objects.values_list("status_code", flat=True)) == {400}


def send(case: Any, headers: dict[str, str], body: bytes) -> Any:
    """Send ``body`` as it is, with ``headers`` set on the case itself: a negative case that
    dropped Stripe-Signature would otherwise still leave it out of the request."""
    if headers:
        case.headers = {**(case.headers or {}), **headers}
    response = case.call(data=body, environ_base=PROXY)
    case.validate_response(response, checks=CHECKS)
    return response


# --- Signed by the test: only correctly signed, fresh, valid events are stored ---------------

# What the test does to each generated request before it is sent ("unsigned" is the test above).
TAMPERING = {"signed": 80, "wrong_secret": 20, "altered": 20, "stale": 20, "future": 20, "oversized": 15}


def altered(body: bytes, how: int) -> bytes:
    """Different bytes; for JSON mostly the same event, re-spaced or with one value changed."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        data = None
    if how == 0 and data is not None:
        other = json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode("utf-8", "surrogatepass")
        if other != body:
            return other
    if how == 1 and isinstance(data, dict) and data:
        key = next(iter(data))
        other = json.dumps({**data, key: "altered"}).encode("utf-8", "surrogatepass")
        if other != body:
            return other
    if how == 2 and body:
        return body[:-1] + bytes([body[-1] ^ 0x01])
    return body + b"\n"


def deliver(case: Any, tamper: str, accepted: dict[str, str], *, ensure_ascii: bool = True, secret: str = "",
            how: int = 0, offset: int = TOLERANCE + 60, extra: int = 0) -> None:
    """Tamper with a generated case, send it, and check the answer and what was stored.
    ``accepted`` maps each stored event id to the correctly signed body it was stored from."""
    body = raw_body(case, ensure_ascii=ensure_ascii)
    now = int(time.time())
    payload, timestamp = body, now
    if tamper == "altered":  # a replayed signature over changed bytes
        payload = altered(body, how)
    elif tamper == "stale":
        timestamp = now - offset
    elif tamper == "future":
        timestamp = now + offset
    elif tamper == "oversized":  # trailing whitespace: still the same JSON, but over the cap
        body = payload = body + b" " * (MAX_BODY + 1 - len(body) + extra)
    sig = signature.header(body, [secret if tamper == "wrong_secret" else WEBHOOK_SECRET], timestamp)

    events, jobs = Event.objects.count(), Job.objects.count()
    response = send(case, {"Stripe-Signature": sig}, payload)
    expected = refusal(payload) if tamper == "signed" else None
    if tamper == "signed" and expected is None:
        assert response.status_code == 200, (response.status_code, response.text[:300])
        answer = response.json()
        event_id = json.loads(payload)["id"]
        assert answer["event"] == event_id
        if event_id in accepted:
            assert answer["status"] == "duplicate"
        else:
            assert answer["status"] in ("stored", "ignored")
            accepted[event_id] = payload.decode("utf-8")
        stored = Event.objects.get(provider="stripe", event_id=event_id)
        assert stored.payload == accepted[event_id]  # the raw body, exactly as signed
        return
    answer = assert_refused_and_logged(response, (413,) if tamper == "oversized" else (400,))
    if tamper == "signed":
        assert answer["error"] == expected, (answer, payload[:300])
    elif tamper in ("wrong_secret", "altered"):
        assert answer["error"] == "bad_signature", answer
    elif tamper in ("stale", "future"):
        assert answer["error"] == f"{tamper}_timestamp", answer
    else:
        assert answer["error"] == "body_too_large", answer
    assert (Event.objects.count(), Job.objects.count()) == (events, jobs), f"{tamper}: {payload[:300]!r}"


def assert_only_accepted_bodies_stored(accepted: dict[str, str]) -> None:
    """Every stored event is a body that was correctly signed, and every job belongs to one."""
    assert dict(Event.objects.values_list("event_id", "payload")) == accepted
    assert not Job.objects.filter(event__isnull=True).exists()
    assert set(Job.objects.values_list("event__event_id", flat=True)) <= set(accepted)
    assert Event.objects.filter(status=Event.RECEIVED).count() == Job.objects.count()


@pytest.mark.parametrize("tamper", list(TAMPERING))
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_only_correctly_signed_valid_events_are_stored(operation: Any, mode: GenerationMode, tamper: str) -> None:
    accepted: dict[str, str] = {}
    runs = 0

    @fuzz_settings(TAMPERING[tamper])
    @given(case=operation.as_strategy(mode), ensure_ascii=st.booleans(),
           secret=st.sampled_from(["whsec_other", WEBHOOK_SECRET[:-1], WEBHOOK_SECRET + "x"]),
           how=st.integers(0, 3), offset=st.integers(TOLERANCE + 60, 10**9), extra=st.integers(0, 1000))
    def run(case: Any, **tampering: Any) -> None:
        nonlocal runs
        runs += 1
        deliver(case, tamper, accepted, **tampering)

    run()
    assert runs >= TAMPERING[tamper] // 2, runs
    assert_only_accepted_bodies_stored(accepted)
    if tamper == "signed" and mode is GenerationMode.POSITIVE:
        # Schema-valid bodies, correctly signed, are mostly acceptable: the accepting path ran.
        assert len(accepted) >= 5, accepted
    elif tamper != "signed":
        assert not accepted
    assert IntakeLog.objects.count() == runs


def test_schemathesis_coverage_cases_unsigned_and_signed(operation: Any) -> None:
    # The coverage phase: Schemathesis's deterministic boundary and negative cases (each
    # field missing or of every wrong type, the body an array, a string, null, absent, headers
    # missing, other methods), each POST sent as generated and then correctly signed.
    schema = operation.schema
    cases = list(schema.iter_coverage_cases(operation, generation_modes=list(GenerationMode),
                                            generation_config=schema.config.generation_for(operation=operation)))
    assert len(cases) >= 50
    assert {type(case.body) for case in cases} >= {dict, list, str, NotSet}
    accepted: dict[str, str] = {}
    other_methods = [case for case in cases if case.method != "POST"]
    for case in other_methods:  # PUT, GET, …: Django's 405 before the view runs, nothing logged
        response = case.call(environ_base=PROXY)
        assert (response.status_code, response.headers["allow"]) == (405, ["POST"]), case.method
    cases = [case for case in cases if case.method == "POST"]
    for case in cases:
        events = Event.objects.count()
        response = case.call(environ_base=PROXY)
        case.validate_response(response, checks=CHECKS)
        assert assert_refused_and_logged(response)["error"] in SIGNATURE_REASONS
        assert Event.objects.count() == events
        deliver(case, "signed", accepted)
    assert_only_accepted_bodies_stored(accepted)
    assert IntakeLog.objects.count() == 2 * len(cases)


# --- Over the rate limit: the documented 429, before the body is read ----------------------

def test_once_an_address_has_wasted_its_limit_everything_gets_the_documented_429(operation: Any,
                                                                                  settings: Any) -> None:
    # Only wasted requests count (refused, or a duplicate); a new, correctly signed event does
    # not, until the address is over its limit: then every request waits, signed or not.
    limit = 5
    settings.INTAKE_RATE_LIMIT = (limit, 3600)
    settings.TRUSTED_PROXIES = ()   # one client, whatever X-Forwarded-For says
    wasted, seen, answers = 0, set(), []

    @fuzz_settings(40)
    @given(case=operation.as_strategy(GenerationMode.POSITIVE), sign=st.booleans())
    def run(case: Any, sign: bool) -> None:
        nonlocal wasted
        body = raw_body(case)
        headers = {"Stripe-Signature": signature.header(body, [WEBHOOK_SECRET])} if sign else {}
        events = Event.objects.count()
        response = send(case, headers, body)
        answers.append(response.status_code)
        if wasted >= limit:
            assert response.status_code == 429
            assert 1 <= int(response.headers["retry-after"][0]) <= 3600
            assert assert_refused_and_logged(response, (429,)) == {"error": "rate_limited"}
            assert Event.objects.count() == events
            return
        if not sign:  # Schemathesis's own signature header
            assert_refused_and_logged(response)
            wasted += 1
            return
        assert response.status_code == 200, response.text[:300]
        event_id = json.loads(body)["id"]
        if event_id in seen:
            assert response.json()["status"] == "duplicate"
            wasted += 1
        else:
            assert Event.objects.count() == events + 1
            seen.add(event_id)

    run()
    assert wasted == limit and 429 in answers, answers
    assert len(seen) == Event.objects.count()
