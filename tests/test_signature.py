"""Stripe signature verification against the computed vector in ../shared/fixtures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from frontdesk.intake import signature
from frontdesk.intake.signature import SignatureError

VECTOR = json.loads((Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "stripe"
                     / "signature_test_vector.json").read_text())
PAYLOAD = VECTOR["payload"].encode()
T = VECTOR["timestamp"]


def test_it_computes_stripes_expected_v1() -> None:
    assert signature.compute(PAYLOAD, VECTOR["secret"], T) == VECTOR["expected_v1"]
    assert signature.header(PAYLOAD, [VECTOR["secret"]], T) == VECTOR["header"]


def test_it_accepts_the_vector_within_tolerance() -> None:
    signature.verify(PAYLOAD, VECTOR["header"], [VECTOR["secret"]], 300, now=T + 10)


def test_it_rejects_the_vector_as_stale_at_real_time() -> None:
    with pytest.raises(SignatureError) as err:
        signature.verify(PAYLOAD, VECTOR["header"], [VECTOR["secret"]], 300)
    assert err.value.reason == "stale_timestamp"


def test_it_rejects_a_future_timestamp() -> None:
    with pytest.raises(SignatureError) as err:
        signature.verify(PAYLOAD, VECTOR["header"], [VECTOR["secret"]], 300, now=T - 301)
    assert err.value.reason == "future_timestamp"


@pytest.mark.parametrize("secret", ["whsec_test_secret", "whsec_old_secret"])
def test_it_accepts_a_rotation_header_with_either_secret_and_ignores_v0(secret: str) -> None:
    signature.verify(PAYLOAD, VECTOR["rotation_header_two_v1_plus_v0"], [secret], 300, now=T)


def test_it_accepts_any_of_several_configured_secrets() -> None:
    signature.verify(PAYLOAD, VECTOR["header"], ["whsec_new_one", VECTOR["secret"]], 300, now=T)


def test_it_ignores_a_v0_only_header() -> None:
    v0_only = f"t={T},v0={VECTOR['expected_v1']}"
    with pytest.raises(SignatureError) as err:
        signature.verify(PAYLOAD, v0_only, [VECTOR["secret"]], 300, now=T)
    assert err.value.reason == "malformed_signature"


@pytest.mark.parametrize(("header", "reason"), [
    (None, "missing_signature"),
    ("", "missing_signature"),
    ("garbage", "malformed_signature"),
    ("t=abc,v1=00", "malformed_signature"),
    (f"v1={VECTOR['expected_v1']}", "malformed_signature"),
])
def test_it_names_what_is_wrong_with_a_header(header: str | None, reason: str) -> None:
    with pytest.raises(SignatureError) as err:
        signature.verify(PAYLOAD, header, [VECTOR["secret"]], 300, now=T)
    assert err.value.reason == reason


def test_it_rejects_an_altered_body() -> None:
    with pytest.raises(SignatureError) as err:
        signature.verify(PAYLOAD + b" ", VECTOR["header"], [VECTOR["secret"]], 300, now=T)
    assert err.value.reason == "bad_signature"


def test_it_rejects_the_wrong_secret() -> None:
    with pytest.raises(SignatureError) as err:
        signature.verify(PAYLOAD, VECTOR["header"], ["whsec_other"], 300, now=T)
    assert err.value.reason == "bad_signature"
