"""A fake endpoint for frontdesk's outbound webhooks, signed per Standard Webhooks.

Spec: https://www.standardwebhooks.com/ (spec/standard-webhooks.md, "Signature scheme").
A delivery carries ``webhook-id``, ``webhook-timestamp`` (integer unix seconds) and
``webhook-signature``: space-separated ``v1,<base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}"))>``
entries, more than one during key rotation. The secret is ``whsec_<base64 key>``; the HMAC key
is the base64-decoded part. ``sign()`` and ``verify()`` are pure functions so other code can
test against the same implementation. Standard library only.
"""

from __future__ import annotations

import base64
import binascii
import copy
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from .base import ControlError, FakeServer, Request, Response, RouteSpec, json_response

SECRET_PREFIX = "whsec_"
# The spec's recommended tolerance for the timestamp, both directions (replay protection).
TOLERANCE_SECONDS = 300


def secret_key(secret: str) -> bytes:
    """The HMAC key of a ``whsec_…`` secret. As in the reference libraries, the prefix is
    optional; the rest must be base64. Raises ``ValueError``."""
    if not isinstance(secret, str):
        raise ValueError("invalid secret: not a string")
    encoded = secret[len(SECRET_PREFIX):] if secret.startswith(SECRET_PREFIX) else secret
    try:
        key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("invalid secret: not base64 after the whsec_ prefix") from None
    if not key:
        raise ValueError("invalid secret: empty key")
    return key


def _to_bytes(body: bytes | str) -> bytes:
    return body.encode("utf-8") if isinstance(body, str) else body


def sign(secret: str, msg_id: str, timestamp: int | str, body: bytes | str) -> str:
    """The ``webhook-signature`` header value (one ``v1`` entry) for a delivery."""
    signed = f"{msg_id}.{int(timestamp)}.".encode() + _to_bytes(body)
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes | str,
    now: float | None = None,
    *,
    tolerance: int = TOLERANCE_SECONDS,
) -> None:
    """Check a delivery as a Standard Webhooks receiver must; raise ``ValueError(reason)``.

    Header names are matched case-insensitively. Only ``v1`` (symmetric) signatures are
    checked; other versions (e.g. ``v1a``, asymmetric) are ignored, so they never match.
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    msg_id = lowered.get("webhook-id")
    raw_ts = lowered.get("webhook-timestamp")
    signatures = lowered.get("webhook-signature")
    if not msg_id or not raw_ts or not signatures:
        raise ValueError("missing required headers")
    try:
        timestamp = int(raw_ts)
    except ValueError:
        raise ValueError("invalid timestamp") from None
    now = time.time() if now is None else now
    if timestamp < now - tolerance:
        raise ValueError("message timestamp too old")
    if timestamp > now + tolerance:
        raise ValueError("message timestamp too new")
    expected = sign(secret, msg_id, timestamp, body).partition(",")[2].encode()
    for entry in signatures.split(" "):
        version, _, value = entry.partition(",")
        # Constant-time comparison, as the spec requires; any one v1 entry may match.
        if version == "v1" and hmac.compare_digest(value.encode(), expected):
            return
    raise ValueError("no matching signature found")


class FakeWebhookReceiver(FakeServer):
    """Accepts ``POST`` to any path: ``204`` if the signature verifies, else
    ``400 {"error": reason}``. Every delivery that reaches the receiver is recorded in
    ``deliveries`` (fault-injected ones only in ``calls``).

    Options (``configure()`` / ``POST /_fake/config``): ``secret``, ``tolerance`` (seconds),
    ``rate_limit``.
    """

    name = "receiver"
    CONFIG_KEYS = ("rate_limit", "secret", "tolerance")

    def __init__(
        self,
        secret: str,
        port: int = 0,
        *,
        tolerance: int = TOLERANCE_SECONDS,
        rate_limit: tuple[int, float] | None = None,
    ) -> None:
        secret_key(secret)  # fail at construction, not on the first delivery
        super().__init__(port, rate_limit=rate_limit, secret=secret, tolerance=tolerance)
        self._arrived = threading.Condition(self._lock)  # handlers run under the server lock

    @property
    def deliveries(self) -> list[dict[str, Any]]:
        """``{"id", "timestamp", "body", "verified", "error", "path"}`` per delivery (a copy)."""
        with self._lock:
            return copy.deepcopy(self._deliveries)

    def wait_for(
        self, predicate: Callable[[dict[str, Any]], bool] = lambda d: True, timeout: float = 5.0
    ) -> dict[str, Any]:
        """The first delivery matching ``predicate`` (verified or not), waiting up to
        ``timeout`` s; ``AssertionError`` on timeout."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while True:
                for delivery in self._deliveries:
                    if predicate(delivery):
                        return copy.deepcopy(delivery)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"no matching delivery within {timeout}s; got {self._deliveries!r}"
                    )
                self._arrived.wait(remaining)

    # ---- FakeServer hooks ------------------------------------------------------------------

    def routes(self) -> list[RouteSpec]:
        return [("POST", r"/", self._deliver)]

    def control_routes(self) -> list[RouteSpec]:
        return [("GET", r"/_fake/deliveries$", lambda req: json_response(200, self.state()))]

    def reset_state(self) -> None:
        self._deliveries: list[dict[str, Any]] = []

    def seed(self, data: dict[str, Any]) -> dict[str, Any]:
        raise ControlError("the webhook receiver has nothing to seed")

    def state(self) -> dict[str, Any]:
        return {"deliveries": self.deliveries}

    def configure(self, **options: Any) -> None:
        if "secret" in options:
            secret_key(options["secret"])  # ValueError → 400 on the control API
        super().configure(**options)

    def not_found_response(self, req: Request) -> Response:
        return json_response(405, {"error": "deliveries are POSTed"}, Allow="POST")

    def precheck(self, req: Request) -> Response | None:
        # The signature covers the raw bytes, so it is checked before the body is judged:
        # drop the base class's "malformed JSON" verdict and let ``_deliver`` decide.
        req.body_error = None
        return None

    # ---- the endpoint ----------------------------------------------------------------------

    def _deliver(self, req: Request) -> Response:
        raw_ts = req.headers.get("webhook-timestamp")
        try:
            timestamp: Any = int(raw_ts) if raw_ts is not None else None
        except ValueError:
            timestamp = raw_ts  # recorded as sent; verify() rejects it
        try:
            body: Any = json.loads(req.raw_body)
            body_is_json = True
        except ValueError:
            body, body_is_json = None, False
        record: dict[str, Any] = {
            "id": req.headers.get("webhook-id"),
            "timestamp": timestamp,
            "body": body,
            "verified": False,
            "error": None,
            "path": req.path,
        }
        try:
            verify(self.secret, req.headers, req.raw_body, tolerance=self.tolerance)
            record["verified"] = True
            if not body_is_json:
                raise ValueError("body is not JSON")  # the spec's payloads are JSON
        except ValueError as exc:
            record["error"] = str(exc)
        self._deliveries.append(record)
        self._arrived.notify_all()  # we hold the server lock here (FakeServer._handle)
        if record["error"]:
            return json_response(400, {"error": record["error"]})
        return Response(204, changed=True)
