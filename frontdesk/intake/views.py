"""``POST /webhooks/stripe``: verify, store the event and its jobs in one transaction, answer.

Nothing here calls a provider: the answer comes in milliseconds and a 200 means the event and
the work it causes are durably stored. Every request leaves an IntakeLog row.

Everything before the signature check is hostile input: the body, every header, their sizes.
Each of them gets a 4xx with a reason code, never a 500 (tests/security/test_hostile_intake.py).
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import datetime

from django.conf import settings
from django.db import DatabaseError
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from frontdesk.intake import signature, storage, throttling
from frontdesk.intake.models import IntakeLog
from frontdesk.logs import bound, get_logger
from frontdesk.ops.metrics import EVENTS, INTAKE_LATENCY

log = get_logger(__name__)


class Rejected(Exception):
    def __init__(self, status: int, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.reason, self.detail = status, reason, detail


# Longest id and type the Event columns hold; Stripe's are far shorter.
FIELD_LIMITS = {"id": 255, "type": 100}


def _parse(body: bytes) -> dict[str, object]:
    try:
        # Stripe sends UTF-8; json.loads(bytes) would also guess UTF-16/32 and strip a BOM, and
        # the body is stored as the UTF-8 text it was signed as. Deep nesting ([[[…]]]) raises
        # RecursionError in the decoder: it is a bad body like any other.
        data = json.loads(body.decode("utf-8"))
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        raise Rejected(400, "invalid_json", "the body is not valid JSON") from None
    if not isinstance(data, dict):
        raise Rejected(400, "invalid_json", "the body is not a JSON object")
    if data.get("object") == "v2.core.event":
        raise Rejected(400, "thin_event", "thin events are not supported on this endpoint; use a snapshot endpoint")
    for field, limit in FIELD_LIMITS.items():
        value = data.get(field)
        # Printable excludes NUL and lone surrogates, which PostgreSQL text cannot hold.
        if not isinstance(value, str) or not value or len(value) > limit or not value.isprintable():
            raise Rejected(400, f"missing_{field}", f"the event has no valid '{field}'")
    return data


@csrf_exempt
@require_POST
def stripe_webhook(request: HttpRequest) -> JsonResponse:
    started = time.perf_counter()
    received_at = timezone.now()
    correlation_id = uuid.uuid4().hex
    client = throttling.client_address(request)
    entry = IntakeLog(provider="stripe", received_at=received_at, source_ip=None if client is None else str(client),
                      correlation_id=correlation_id)
    with bound(correlation_id=correlation_id):
        wait = throttling.retry_after(client)
        if wait is not None:
            # Before the body is read: a throttled request costs its log row and nothing else.
            response = _answer(entry, started, 429, "rate_limited", {"error": "rate_limited"})
            response["Retry-After"] = str(wait)
            return response
        try:
            data, body = _verify(request)
            entry.event_id, entry.event_type = str(data["id"])[:255], str(data["type"])[:100]
            outcome = _store(data, body, received_at, correlation_id, entry, started)
        except Rejected as exc:
            throttling.count_wasted(client)
            return _answer(entry, started, exc.status, exc.reason, {"error": exc.reason, "detail": exc.detail})
        except DatabaseError:
            log.exception("intake_database_error")
            # 503 makes Stripe retry later; nothing was stored.
            return _answer(entry, started, 503, "database_unavailable",
                           {"error": "database_unavailable", "detail": "try again later"}, write_log=False)
        if outcome == storage.DUPLICATE:
            throttling.count_wasted(client)
        _observe(entry, outcome, started)
        return JsonResponse({"status": outcome, "event": entry.event_id, "correlation_id": correlation_id})


def _observe(entry: IntakeLog, outcome: str, started: float) -> None:
    EVENTS.labels(entry.provider, entry.event_type, outcome).inc()
    INTAKE_LATENCY.labels(entry.provider).observe(time.perf_counter() - started)


def _verify(request: HttpRequest) -> tuple[dict[str, object], bytes]:
    declared = request.META.get("CONTENT_LENGTH") or "0"
    # isdigit() alone admits "²" and "١٢", which int() rejects or reads.
    if not (declared.isascii() and declared.isdigit()):
        raise Rejected(400, "bad_content_length", "the Content-Length header is not a number")
    # Checked by length first: int() refuses strings over 4300 digits.
    if len(declared) > 12 or int(declared) > settings.WEBHOOK_MAX_BODY_BYTES:
        raise Rejected(413, "body_too_large", f"the body is over {settings.WEBHOOK_MAX_BODY_BYTES} bytes")
    body = request.read(settings.WEBHOOK_MAX_BODY_BYTES + 1)
    if len(body) > settings.WEBHOOK_MAX_BODY_BYTES:
        raise Rejected(413, "body_too_large", f"the body is over {settings.WEBHOOK_MAX_BODY_BYTES} bytes")
    sig_header = request.META.get("HTTP_STRIPE_SIGNATURE")
    # Stripe's header is ASCII; hmac.compare_digest raises TypeError on any other str.
    if sig_header and not sig_header.isascii():
        raise Rejected(400, "malformed_signature", "the Stripe-Signature header is not ASCII")
    try:
        signature.verify(body, sig_header, settings.STRIPE_WEBHOOK_SECRETS,
                         settings.WEBHOOK_TOLERANCE_SECONDS)
    except signature.SignatureError as exc:
        raise Rejected(400, exc.reason, str(exc)) from None
    except OverflowError:  # a correctly signed timestamp of hundreds of digits: beyond a float
        raise Rejected(400, "malformed_signature", "timestamp is out of range") from None
    return _parse(body), body


def _store(data: dict[str, object], body: bytes, received_at: datetime, correlation_id: str,
           entry: IntakeLog, started: float) -> str:
    entry.latency_ms = (time.perf_counter() - started) * 1000
    outcome = storage.store(data, body.decode("utf-8"), received_at, correlation_id, log_entry=entry)  # type: ignore[arg-type]
    if outcome == storage.DUPLICATE:
        # Stripe delivers some events more than once (stripe.md §2): already stored.
        _answer(entry, started, 200, "duplicate", {})
        log.info("webhook_duplicate", event_type=entry.event_type)
        return outcome
    log.info("webhook_stored", event_type=entry.event_type, ignored=outcome == storage.IGNORED or None)
    return outcome


def _answer(entry: IntakeLog, started: float, status: int, reason: str, body: dict[str, object],
            write_log: bool = True) -> JsonResponse:
    entry.pk = None
    entry.status_code, entry.reason = status, reason
    entry.latency_ms = (time.perf_counter() - started) * 1000
    if write_log:
        try:
            entry.save()
        except DatabaseError:
            log.exception("intake_log_failed")
    if status != 200:
        log.warning("webhook_rejected", status=status, reason=reason)
        _observe(entry, reason, started)
    return JsonResponse(body, status=status)
