"""Stripe webhook signatures (stripe.md §1): HMAC-SHA256 of ``"{t}.{raw body}"``, any ``v1``
may match, constant-time comparison, a tolerance in both directions, several secrets."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Sequence


class SignatureError(Exception):
    """The request is not provably from Stripe; ``reason`` is a stable code for the intake log."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def compute(payload: bytes, secret: str, timestamp: int) -> str:
    signed = str(timestamp).encode() + b"." + payload
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def header(payload: bytes, secrets: Sequence[str], timestamp: int | None = None) -> str:
    """Build a ``Stripe-Signature`` header (one ``v1`` per secret), as Stripe does during a
    secret roll. Used by tests and ``send-test-event``."""
    t = int(time.time()) if timestamp is None else timestamp
    return ",".join([f"t={t}", *(f"v1={compute(payload, s, t)}" for s in secrets)])


def verify(payload: bytes, sig_header: str | None, secrets: Sequence[str], tolerance: int,
           now: float | None = None) -> None:
    """Raise :class:`SignatureError` unless some ``v1`` matches some secret within tolerance."""
    if not secrets:
        raise SignatureError("no_secret_configured", "STRIPE_WEBHOOK_SECRET is not set")
    if not sig_header:
        raise SignatureError("missing_signature", "no Stripe-Signature header")
    timestamp: int | None = None
    candidates: list[str] = []
    for part in sig_header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            continue
        if key == "t":
            # Unix seconds in ASCII digits: int() would also take "١٧", "1_7" and 4000 digits,
            # which then overflow the float arithmetic below.
            if not (value.isascii() and value.isdigit() and len(value) <= 12):
                raise SignatureError("malformed_signature", "timestamp is not an integer")
            timestamp = int(value)
        elif key == "v1":  # every other scheme is ignored (downgrade protection)
            candidates.append(value)
    if timestamp is None:
        raise SignatureError("malformed_signature", "no timestamp in Stripe-Signature")
    if not candidates:
        raise SignatureError("malformed_signature", "no v1 signature in Stripe-Signature")
    expected = [compute(payload, secret, timestamp) for secret in secrets]
    # Compare every pair, without stopping early, so timing says nothing about which matched.
    matched = False
    for want in expected:
        for got in candidates:
            # As bytes: compare_digest raises TypeError on a str that is not ASCII.
            matched |= hmac.compare_digest(want.encode(), got.encode("utf-8", "surrogateescape"))
    if not matched:
        raise SignatureError("bad_signature", "no signature matches the payload")
    # Checked after the HMAC so a forged header cannot probe the clock.
    age = (time.time() if now is None else now) - timestamp
    if age > tolerance:
        raise SignatureError("stale_timestamp", f"timestamp is {int(age)} s old")
    if age < -tolerance:
        raise SignatureError("future_timestamp", f"timestamp is {int(-age)} s in the future")
