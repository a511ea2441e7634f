"""The one way frontdesk calls a provider: a shared rate limit, a timeout, and failures
classified so the ledger knows whether to retry, pause the provider, or ask a person."""

from __future__ import annotations

import contextvars
import email.utils
import os
import threading
import time
from collections.abc import Iterable
from typing import Any

import httpx
from django.conf import settings

from frontdesk.redact import redact

TRANSIENT, PERMANENT, AUTH, RATE_LIMITED = "transient", "permanent", "auth", "rate_limited"

# The status of the last response in this thread's job, for the attempt row.
last_status: contextvars.ContextVar[int | None] = contextvars.ContextVar("last_status", default=None)


class ProviderError(Exception):
    """A failed provider call. ``kind`` decides what the ledger does:
    transient → retry with backoff; rate_limited → wait ``retry_after``; auth → pause the
    provider; permanent → review queue with ``reason``."""

    def __init__(self, provider: str, kind: str, reason: str, message: str, *,
                 status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.provider = provider
        self.kind = kind
        self.reason = reason
        self.message = redact(message)
        self.status = status
        self.retry_after = retry_after


def parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if value else None
        return max(0.0, parsed.timestamp() - time.time()) if parsed else None


class _SharedTransport(httpx.BaseTransport):
    """The process's one connection pool, lent to every client: closing a client leaves it open.

    A client per job keeps headers and cookies apart, but building a transport per job built a
    TLS context (loading the CA bundle) and a new connection each time: over half of a worker's
    CPU per job (docs/performance.md). The pool is thread-safe and keyed by origin inside httpx.
    """

    _lock = threading.Lock()
    _pool: httpx.HTTPTransport | None = None

    @classmethod
    def pool(cls) -> httpx.HTTPTransport:
        with cls._lock:
            if cls._pool is None:
                cls._pool = httpx.HTTPTransport()
            return cls._pool

    @classmethod
    def forget(cls) -> None:
        # A forked child must not write to sockets its parent is using.
        cls._pool = None
        cls._lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self.pool().handle_request(request)


os.register_at_fork(after_in_child=_SharedTransport.forget)
_TRANSPORT = _SharedTransport()


class ProviderClient:
    """Base for the Circle, Kit and Stripe clients; subclasses set ``provider`` and override
    :meth:`error_message` to read the vendor's error body."""

    provider = "provider"

    def __init__(self, base_url: str, headers: dict[str, str], timeout: float | None = None) -> None:
        self.http = httpx.Client(
            base_url=base_url,
            headers={"User-Agent": "frontdesk/0.1", **headers},
            timeout=timeout or settings.HTTP_TIMEOUT_SECONDS,
            follow_redirects=False,
            transport=_TRANSPORT,
        )

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> ProviderClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def error_message(self, response: httpx.Response) -> str:
        return response.text[:300]

    def request(self, method: str, path: str, *, ok: Iterable[int] = (200, 201, 202, 204),
                **kwargs: Any) -> httpx.Response:
        from frontdesk.ledger.ratelimit import acquire

        acquire(self.provider)
        from frontdesk.reconcile.usage import count_delivery_request

        count_delivery_request(self.provider)  # the monthly quota counter (Circle counts Admin API calls)
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.TimeoutException as exc:
            raise ProviderError(self.provider, TRANSIENT, "timeout", f"{method} {path.split('?')[0]}: timed out ({type(exc).__name__})") from None
        except httpx.TransportError as exc:
            raise ProviderError(self.provider, TRANSIENT, "connection_error", f"{method} {path.split('?')[0]}: {type(exc).__name__}") from None
        last_status.set(response.status_code)
        if response.status_code in set(ok):
            return response
        raise self.classify(method, path, response)

    def classify(self, method: str, path: str, response: httpx.Response) -> ProviderError:
        code = response.status_code
        where = f"{method} {path.split('?')[0]} → {code}"
        message = f"{where}: {self.error_message(response)}"
        if code == 429:
            return ProviderError(self.provider, RATE_LIMITED, "rate_limited", message, status=code,
                                 retry_after=parse_retry_after(response.headers.get("Retry-After")))
        if code >= 500:
            return ProviderError(self.provider, TRANSIENT, f"http_{code}", message, status=code,
                                 retry_after=parse_retry_after(response.headers.get("Retry-After")))
        if code in (401, 403):
            return ProviderError(self.provider, AUTH, f"{self.provider}_auth_failed", message, status=code)
        return ProviderError(self.provider, PERMANENT, f"http_{code}", message, status=code)


def json_body(response: httpx.Response) -> dict[str, Any]:
    """The JSON object of a response, or {} (Kit's 429 is plain text, kit.md §2)."""
    if "json" not in response.headers.get("content-type", ""):
        return {}
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}
