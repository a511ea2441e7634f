"""Hostile input at ``POST /webhooks/stripe``: whatever arrives, the intake answers 4xx with a
reason (never a 5xx, never an exception), writes an intake log row, and stores nothing that is
not signed with the webhook secret."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, event, given, settings as hsettings, strategies as st
from hypothesis.control import currently_in_test_context

from frontdesk.intake import signature
from frontdesk.intake.models import Event, IntakeLog
from frontdesk.ledger.models import Job

from .. import stripe_events as se
from ..conftest import WEBHOOK_SECRET

pytestmark = pytest.mark.django_db

# Bounded: the suite runs on 2 shared cores. No example database in the work tree.
FUZZ = hsettings(max_examples=150, deadline=None, database=None,
                 suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                        HealthCheck.data_too_large])
MAX_BODY = 256 * 1024


@pytest.fixture(autouse=True)
def no_rate_limit(settings: Any) -> Iterator[None]:
    # Hundreds of requests from one address: the rate limit has its own tests.
    settings.INTAKE_RATE_LIMIT = None
    yield


def send(client: Any, body: bytes, header: str | None = None, **extra: Any) -> Any:
    """POST a body; check the invariants every request must keep, whatever it carries."""
    logged = IntakeLog.objects.count()
    if header is not None:
        extra["HTTP_STRIPE_SIGNATURE"] = header
    response = client.generic("POST", "/webhooks/stripe", body, content_type="application/json", **extra)
    assert response.status_code < 500, (response.status_code, response.content[:300])
    assert response["Content-Type"] == "application/json"
    assert IntakeLog.objects.count() == logged + 1
    if currently_in_test_context():  # a statistic for --hypothesis-show-statistics
        event(f"{response.status_code} {response.json().get('error') or response.json().get('status')}")
    row = IntakeLog.objects.order_by("-pk").first()
    assert (row.status_code, row.reason) == (response.status_code, (response.json().get("error") or row.reason))
    return response


def assert_nothing_stored() -> None:
    assert not Event.objects.exists()
    assert not Job.objects.exists()


def signed(body: bytes, timestamp: int | None = None) -> str:
    return signature.header(body, [WEBHOOK_SECRET], timestamp)


def stripe_payloads() -> list[dict[str, Any]]:
    """Real Stripe shapes (the OpenAPI fixtures) for each kind of event frontdesk handles."""
    price, product = "price_community", "prod_c"
    return [
        se.event("checkout.session.completed",
                 se.checkout_session("fuzz@example.com", line_items=[se.line_item(price, product)])),
        se.event("invoice.paid", se.invoice("fuzz@example.com", customer="cus_fuzz", subscription="sub_fuzz",
                                            price=price, product=product)),
        se.event("customer.subscription.updated", se.subscription("cus_fuzz", "active", price, product)),
        se.event("charge.refunded", se.charge("pi_fuzz", refunded_amount=4900)),
        se.event("charge.dispute.created", se.dispute("pi_fuzz", "ch_fuzz")),
        se.event("customer.updated", se.customer_object("cus_fuzz", "fuzz@example.com")),
        se.event("product.created", se.fixture("product")),
    ]


PAYLOADS = stripe_payloads()
json_scalars = (st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
                | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=30))
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=10), inner, max_size=4), max_leaves=12)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _paths(child, (*prefix, index))


@st.composite
def mutated_payloads(draw: Any) -> dict[str, Any]:
    """A Stripe event with a few of its values replaced, removed or added at any depth."""
    doc = json.loads(json.dumps(draw(st.sampled_from(PAYLOADS))))
    for _ in range(draw(st.integers(1, 4))):
        path = draw(st.sampled_from(list(_paths(doc))))
        if not path:
            continue
        *parents, last = path
        parent = doc
        for step in parents:
            parent = parent[step]
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "replace":
            parent[last] = draw(json_values)
        elif action == "delete":
            del parent[last]
        elif isinstance(parent, dict):
            parent[draw(st.text(max_size=10))] = draw(json_values)
    return doc


@st.composite
def byte_mutations(draw: Any, body: bytes) -> bytes:
    """The body with bytes flipped, inserted, removed, or cut short; never the body itself."""
    data = bytearray(body)
    for _ in range(draw(st.integers(1, 3))):
        action = draw(st.sampled_from(["flip", "insert", "delete", "truncate"]))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if action == "flip" and data:
            data[at] ^= draw(st.integers(1, 255))
        elif action == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif action == "delete" and data:
            del data[at:at + draw(st.integers(1, 8))]
        else:
            del data[at:]
    result = bytes(data)
    assume(result != body)
    return result


# --- Unsigned, forged and altered: refused, nothing stored -----------------------------------

@FUZZ
@given(body=st.binary(max_size=2048),
       header=st.none() | st.text(max_size=200) | st.just(f"t={int(time.time())},v1={'ab' * 32}"))
def test_random_bytes_are_refused_and_logged(client: Any, body: bytes, header: str | None) -> None:
    response = send(client, body, header)
    assert response.status_code == 400
    assert_nothing_stored()


@FUZZ
@given(payload=mutated_payloads(), secret=st.sampled_from(["", "whsec_wrong", WEBHOOK_SECRET[:-1]]))
def test_stripe_shaped_json_signed_with_another_secret_is_refused(client: Any, payload: dict[str, Any],
                                                                   secret: str) -> None:
    body = json.dumps(payload).encode()
    response = send(client, body, signature.header(body, [secret]) if secret else None)
    assert response.status_code == 400
    assert response.json()["error"] in ("bad_signature", "missing_signature")
    assert_nothing_stored()


@FUZZ
@given(data=st.data())
def test_a_replayed_signature_with_an_altered_body_is_refused(client: Any, data: Any) -> None:
    original = json.dumps(data.draw(st.sampled_from(PAYLOADS))).encode()
    header = signed(original)
    if data.draw(st.booleans()):
        altered = data.draw(byte_mutations(original))
    else:
        altered = json.dumps(data.draw(mutated_payloads())).encode()
        assume(altered != original)
    response = send(client, altered, header)
    assert response.json()["error"] == "bad_signature"
    assert_nothing_stored()


@FUZZ
@given(payload=st.sampled_from(PAYLOADS),
       # A minute clear of the 300 s tolerance, so a second ticking over mid-test cannot bring a
       # future timestamp back inside it; test_signature.py tests the exact boundary on a fixed clock.
       offset=st.integers(360, int(time.time()) - 1) | st.integers(-(10**11), -360))
def test_a_valid_signature_far_in_the_past_or_future_is_refused(client: Any, payload: dict[str, Any],
                                                                 offset: int) -> None:
    body = json.dumps(payload).encode()
    response = send(client, body, signed(body, int(time.time()) - offset))
    assert response.json()["error"] == ("stale_timestamp" if offset > 0 else "future_timestamp")
    assert_nothing_stored()


def _timestamps() -> st.SearchStrategy[str]:
    now = int(time.time())
    return st.one_of(
        st.just(str(now)),
        st.integers(-(10**400), 10**400).map(str),                  # negative and huge
        st.sampled_from([str(-now), "1" * 320, "9" * 5000, "-" + "9" * 5000, "0", "-0", "00000",
                         f"{now}.5", "1.7e9", f"{now}e0", "+" + str(now), f" {now} ", f"{now:_}",
                         "".join(chr(0x0660 + int(c)) for c in str(now)),     # Arabic-Indic digits
                         "".join(chr(0xFF10 + int(c)) for c in str(now)),     # full-width digits
                         "²³", "NaN", "inf", "0x10", ""]),
        ascii_text(20),
        st.text(max_size=20),
    )


def ascii_text(max_size: int) -> st.SearchStrategy[str]:
    return st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=max_size)


@st.composite
def signature_headers(draw: Any) -> str:
    """Duplicate, oversized and garbled headers, odd timestamps, many v1 entries."""
    parts = []
    for _ in range(draw(st.integers(0, 4))):
        parts.append("t=" + draw(_timestamps()))
    v1 = st.one_of(st.text(alphabet="0123456789abcdef", min_size=64, max_size=64), ascii_text(80),
                   st.text(max_size=80))
    parts += ["v1=" + draw(v1) for _ in range(draw(st.integers(0, 5)))]
    parts += [draw(ascii_text(40) | st.text(max_size=40)) for _ in range(draw(st.integers(0, 3)))]
    if draw(st.booleans()):
        parts += ["v1=" + "0" * 64] * draw(st.integers(100, 3000))   # many v1 entries
    if draw(st.booleans()):
        parts.append("v0=" + "a" * draw(st.integers(1000, 60000)))       # oversized
    header = draw(st.sampled_from([",", ", ", " ,", ";"])).join(draw(st.permutations(parts)))
    # What a WSGI server hands over: the raw header bytes read as Latin-1.
    return header.encode("utf-8", "surrogatepass").decode("latin-1") if draw(st.integers(0, 3)) == 0 else header


@FUZZ
@given(payload=st.sampled_from(PAYLOADS), header=signature_headers())
def test_garbled_signature_headers_are_refused(client: Any, payload: dict[str, Any], header: str) -> None:
    response = send(client, json.dumps(payload).encode(), header)
    assert response.status_code == 400
    assert_nothing_stored()


@pytest.mark.parametrize("timestamp", ["1" * 320, "-" + "1" * 320, "9" * 4000])
def test_a_correctly_signed_timestamp_beyond_float_range_is_refused(client: Any, timestamp: str) -> None:
    # Only a holder of the secret can get here; it must still be a 400, not an OverflowError.
    body = json.dumps(PAYLOADS[0]).encode()
    header = f"t={timestamp},v1={signature.compute(body, WEBHOOK_SECRET, int(timestamp))}"
    response = send(client, body, header)
    assert response.status_code == 400
    assert_nothing_stored()


def test_a_valid_v1_among_thousands_of_forged_ones_is_accepted(client: Any) -> None:
    # Stripe sends one v1 per active secret; many entries are harmless, one match suffices.
    body = json.dumps(se.event("product.created", se.fixture("product"))).encode()
    t = int(time.time())
    header = ",".join([f"t={t}", *[f"v1={'0' * 64}"] * 2000, f"v1={signature.compute(body, WEBHOOK_SECRET, t)}"])
    assert send(client, body, header).status_code == 200


# --- Content-Length lies --------------------------------------------------------------------

@pytest.mark.parametrize(("declared", "status", "reason"), [
    ("abc", 400, "bad_content_length"),
    ("-1", 400, "bad_content_length"),
    ("1.5", 400, "bad_content_length"),
    ("²", 400, "bad_content_length"),          # isdigit() but not int()
    ("١٢", 400, "bad_content_length"),         # Arabic-Indic digits
    (" 12", 400, "bad_content_length"),
    ("9" * 5000, 413, "body_too_large"),       # over int()'s 4300-digit limit
    (str(MAX_BODY + 1), 413, "body_too_large"),
    ("00000000000000000000000012", 413, "body_too_large"),
])
def test_a_bad_content_length_is_refused(client: Any, declared: str, status: int, reason: str) -> None:
    body = json.dumps(PAYLOADS[0]).encode()
    response = send(client, b"", signed(body), CONTENT_LENGTH=declared, **{"wsgi.input": io.BytesIO(body)})
    assert (response.status_code, response.json()["error"]) == (status, reason)
    assert_nothing_stored()


@pytest.mark.parametrize("delta", [-1, -50, 1, 5000])
def test_a_content_length_that_disagrees_with_the_body_is_not_a_crash(client: Any, delta: int) -> None:
    # Shorter: the read stops early and the signature no longer matches. Longer: the stream
    # ends first (BytesIO stands in for a closed connection), so what was read is the whole
    # signed body; a real server would wait for the missing bytes and time out.
    payload = se.event("product.created", se.fixture("product"))
    body = json.dumps(payload).encode()
    response = send(client, b"", signed(body), CONTENT_LENGTH=str(len(body) + delta),
                    **{"wsgi.input": io.BytesIO(body)})
    if delta < 0:
        assert (response.status_code, response.json()["error"]) == (400, "bad_signature")
        assert_nothing_stored()
    else:
        assert response.status_code == 200
        assert Event.objects.get().event_id == payload["id"]


# --- Signed but hostile: the secret holder's input still cannot crash the intake ------------

def deep_arrays(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def deep_objects(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


EVENT_HEAD = b'{"id": "evt_deep", "type": "invoice.paid", "data": '


@pytest.mark.parametrize("body", [
    deep_arrays(100_000), EVENT_HEAD + deep_arrays(100_000) + b"}",
    deep_objects(40_000), EVENT_HEAD + deep_objects(40_000) + b"}",
], ids=["arrays", "arrays-in-event", "objects", "objects-in-event"])
def test_deeply_nested_json_is_a_bad_body_not_a_crash(client: Any, body: bytes) -> None:
    assert len(body) <= MAX_BODY
    response = send(client, body, signed(body))
    assert (response.status_code, response.json()["error"]) == (400, "invalid_json")
    assert_nothing_stored()
    # The same body unsigned is refused before it is parsed.
    assert send(client, body, None).json()["error"] == "missing_signature"


def _event_body() -> dict[str, Any]:
    return {"id": se.unique("evt"), "type": "invoice.paid", "object": "event", "data": {"object": {}}}


@pytest.mark.parametrize("encode", [
    lambda text: text.encode("utf-16"),                # with BOM
    lambda text: text.encode("utf-16-le"),
    lambda text: text.encode("utf-16-be"),
    lambda text: text.encode("utf-32"),
    lambda text: b"\xef\xbb\xbf" + text.encode(),     # UTF-8 BOM
    lambda text: text.encode()[:-2] + b"\xff\xfe}",   # invalid UTF-8
    lambda text: text.replace('"invoice.paid"', '"invoice.\xe9"').encode("latin-1"),
    lambda text: text.replace('"object": "event"', '"object": "\x00"').encode(),   # raw NUL in a string
    lambda text: text.encode().replace(b'"event"', b'"\xed\xa0\x80"'),              # UTF-8 surrogate
    lambda text: text.encode().replace(b'"event"', b'"\xc0\xa2"'),                  # overlong encoding
], ids=["utf16-bom", "utf16le", "utf16be", "utf32", "utf8-bom", "invalid-utf8", "latin1", "raw-nul",
        "surrogate", "overlong"])
def test_bodies_that_are_not_utf8_json_are_refused(client: Any, encode: Any) -> None:
    body = encode(json.dumps(_event_body()))
    response = send(client, body, signed(body))
    assert (response.status_code, response.json()["error"]) == (400, "invalid_json")
    assert_nothing_stored()


@pytest.mark.parametrize(("field", "value"), [
    ("id", "evt_\u0000nul"), ("id", "evt_\ud800"), ("id", "evt_\n"), ("id", "x" * 256), ("id", ""),
    ("type", "invoice.\u0000"), ("type", "\udfff"), ("type", "t" * 101), ("type", ["invoice.paid"]),
])
def test_ids_and_types_the_database_cannot_hold_are_refused(client: Any, field: str, value: Any) -> None:
    payload = {**_event_body(), field: value}
    body = json.dumps(payload).encode()
    response = send(client, body, signed(body))
    assert (response.status_code, response.json()["error"]) == (400, f"missing_{field}")
    assert_nothing_stored()


def test_a_body_just_under_the_cap_is_accepted(client: Any) -> None:
    payload = _event_body()
    payload["data"]["object"]["pad"] = ""
    payload["data"]["object"]["pad"] = "x" * (MAX_BODY - len(json.dumps(payload)))
    body = json.dumps(payload).encode()
    assert len(body) == MAX_BODY
    assert send(client, body, signed(body)).status_code == 200
    assert Event.objects.filter(event_id=payload["id"]).exists()


@FUZZ
@given(payload=mutated_payloads() | st.dictionaries(st.text(max_size=10), json_values, max_size=6)
       | json_values.map(lambda v: {"id": se.unique("evt"), "type": "invoice.paid", "data": v}))
def test_signed_hostile_json_is_stored_or_refused_never_a_crash(client: Any, payload: Any) -> None:
    body = json.dumps(payload).encode()
    events, jobs = Event.objects.count(), Job.objects.count()
    response = send(client, body, signed(body))
    if response.status_code == 200:
        assert response.json()["status"] in ("stored", "ignored", "duplicate")
        assert Event.objects.filter(event_id=payload["id"]).exists()
    else:
        assert response.status_code == 400
        assert (Event.objects.count(), Job.objects.count()) == (events, jobs)
