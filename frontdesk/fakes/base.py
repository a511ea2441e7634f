"""The shared machinery of the provider fakes: an HTTP server, routing, faults, rate limits.

Each fake (Circle, Kit, Stripe) is a ``FakeServer`` subclass that declares its routes and its
error format. Everything a test can do from Python it can also do over HTTP under ``/_fake/``,
because the product's workers run in other processes and only see the fakes over the network.
Standard library only: the fakes must run wherever the product runs.
"""

from __future__ import annotations

import base64
import copy
import json
import random
import re
import socket
import struct
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

JSONBody = dict[str, Any] | list[Any] | str | bytes | None

# How long a ``timeout`` fault holds a connection; long enough for any client timeout.
HANG_SECONDS = 60.0


def iso_now(millis: bool = True) -> str:
    """UTC now as ISO-8601 with a ``Z``, the way Circle (millis) and Kit (seconds) print it."""
    now = datetime.now(timezone.utc)
    if millis:
        return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"
    return now.strftime("%Y-%m-%dT%H:%M:%SZ")


# A deliberately simple address check: the fakes must be predictable, not RFC 5322 complete.
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")


def email_is_valid(email: Any, blocked_domains: Iterable[str] = ("invalid.example",)) -> bool:
    if not isinstance(email, str) or not EMAIL_RE.match(email):
        return False
    return email.rsplit("@", 1)[1].lower() not in {d.lower() for d in blocked_domains}


@dataclass
class Call:
    """One provider request as the fake saw it, and what it answered."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any
    raw_body: bytes
    status: int
    changed: bool
    at: float
    auth_scheme: str | None
    # Which fault (if any) shaped the answer: "status", "latency", "timeout",
    # "commit_then_timeout", "reset_connection" or "rate_limit". Not in the brief; handy in asserts.
    fault: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["raw_body"] = self.raw_body.decode("utf-8", errors="replace")
        return data


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    raw_body: bytes
    body: Any
    body_error: str | None
    client_ip: str
    auth_scheme: str | None
    credential: str | None
    args: dict[str, str] = field(default_factory=dict)  # named groups of the matched route

    def q(self, name: str, default: str | None = None) -> str | None:
        """First value of a query parameter."""
        values = self.query.get(name)
        return values[0] if values else default

    def param(self, name: str, default: Any = None) -> Any:
        """A parameter from the JSON/form body, else from the query string.

        Circle's and Kit's Rails-style APIs accept either; clients differ in which they use.
        """
        if isinstance(self.body, dict) and name in self.body:
            return self.body[name]
        return self.q(name, default)


@dataclass
class Response:
    status: int
    body: JSONBody = None
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str | None = None
    changed: bool = False  # did handling this request mutate state (Call.changed)
    fault: str | None = None  # set when the fake itself (not the provider logic) shaped it

    def encode(self) -> tuple[bytes, str | None]:
        if self.body is None:
            return b"", self.content_type
        if isinstance(self.body, bytes):
            return self.body, self.content_type or "application/octet-stream"
        if isinstance(self.body, str):
            return self.body.encode(), self.content_type or "text/plain; charset=utf-8"
        content_type = self.content_type or "application/json; charset=utf-8"
        return json.dumps(self.body).encode(), content_type


def json_response(status: int, body: JSONBody, changed: bool = False, **headers: str) -> Response:
    return Response(status, body, dict(headers), changed=changed)


Handler = Callable[[Request], Response]
RouteSpec = tuple[str, str, Handler]


@dataclass
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler


def compile_routes(specs: Iterable[RouteSpec]) -> list[Route]:
    """Turn ``("GET", r"/v4/tags/(?P<tag_id>\\d+)$", handler)`` specs into routes.

    Patterns are matched from the start of the path; named groups land in ``Request.args``.
    """
    return [Route(method, re.compile(pattern), handler) for method, pattern, handler in specs]


@dataclass
class FaultRule:
    """One entry of ``fail()``: which requests it catches and what it does to them."""

    status: int | None = None
    retry_after: int | None = None
    latency: float = 0.0
    timeout: bool = False
    count: int | None = None
    seconds: float | None = None
    path: str | None = None
    method: str | None = None
    body: str | bytes | dict[str, Any] | None = None
    content_type: str | None = None
    commit_then_timeout: bool = False
    headers: dict[str, str] | None = None  # extra response headers, e.g. Stripe-Should-Retry
    reset_connection: bool = False  # close the socket with RST instead of answering
    # Chance (0..1) that a request the rule matches gets the fault; otherwise the rule is
    # skipped for that request (later rules may still match) and ``count`` is not spent.
    probability: float | None = None
    until: float | None = None  # set from ``seconds`` when the rule is added

    def __post_init__(self) -> None:
        if self.probability is not None:
            if isinstance(self.probability, bool) or not isinstance(self.probability, (int, float)) \
                    or not 0.0 <= self.probability <= 1.0:
                raise ValueError(f"probability must be a number from 0 to 1, not {self.probability!r}")
            self.probability = float(self.probability)
        nothing_chosen = not (
            self.status or self.timeout or self.commit_then_timeout or self.latency
            or self.reset_connection
        )
        if nothing_chosen:
            self.status = 500  # ``fail()`` with no behaviour means "the provider is broken"
        if self.method:
            self.method = self.method.upper()

    def matches(self, req: Request, now: float) -> bool:
        if self.until is not None and now >= self.until:
            return False
        if self.count is not None and self.count <= 0:
            return False
        if self.path is not None and not req.path.startswith(self.path):
            return False
        if self.method is not None and self.method != req.method:
            return False
        return self.probability is None or _random.random() < self.probability

    def expired(self, now: float) -> bool:
        return (self.until is not None and now >= self.until) or (
            self.count is not None and self.count <= 0
        )

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if isinstance(self.body, bytes):
            data["body"] = self.body.decode("utf-8", errors="replace")
        return data


FAULT_FIELDS = {
    "status", "retry_after", "latency", "timeout", "count", "seconds", "path", "method", "body",
    "content_type", "commit_then_timeout", "headers", "reset_connection", "probability",
}
# Draws for ``probability``; its own generator so tests can seed it (``base._random.seed(1)``).
_random = random.Random()


def parse_auth(headers: dict[str, str]) -> tuple[str | None, str | None]:
    """Return (scheme, credential) from the request headers; Basic yields the username."""
    if "x-kit-api-key" in headers:
        return "X-Kit-Api-Key", headers["x-kit-api-key"].strip()
    scheme, _, value = headers.get("authorization", "").strip().partition(" ")
    for known in ("Token", "Bearer", "Basic"):
        if scheme.lower() == known.lower():
            value = value.strip()
            if known == "Basic":
                try:
                    value = base64.b64decode(value, validate=True).decode().partition(":")[0]
                except (ValueError, UnicodeDecodeError):
                    value = ""
            return known, value
    return None, None


class ControlError(ValueError):
    """A bad control-API request; answered as 400 ``{"error": message}``."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the real providers; httpx pools connections
    server: FakeServer
    timeout = 120  # drop idle keep-alive connections eventually

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes; without NODELAY, Nagle plus delayed ACKs add
        # ~40 ms to every keep-alive response.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self) -> None:
        self.server._dispatch(self)

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the call log replaces access logs; stderr noise would drown test output


class FakeServer(ThreadingHTTPServer):
    """Base of the provider fakes. Subclasses fill in the ``provider_*`` hooks and ``routes()``."""

    daemon_threads = True
    block_on_close = False  # stop() must not wait for connections a fault is holding open
    allow_reuse_address = True
    name = "fake"

    # Options that can be changed at run time (``configure()`` / ``POST /_fake/config``) and
    # that ``reset()`` restores. Subclasses extend this tuple.
    CONFIG_KEYS: tuple[str, ...] = ("rate_limit",)
    # Options that take one of a few values; checked by ``configure()`` and at start.
    CHOICES: dict[str, tuple[Any, ...]] = {}

    def __init__(
        self,
        port: int = 0,
        *,
        rate_limit: tuple[int, float] | None = None,
        seed: dict[str, Any] | None = None,
        **options: Any,
    ) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.rate_limit = tuple(rate_limit) if rate_limit else None
        self.options = options
        for key, value in options.items():
            _check_choice(self.CHOICES, key, value)
            setattr(self, key, value)
        self.initial_seed = seed
        self.calls: list[Call] = []
        self._lock = threading.RLock()
        self._faults: list[FaultRule] = []
        self._hits: dict[str, deque[float]] = {}
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._conns: set[socket.socket] = set()
        self._initial_config = {key: copy.deepcopy(getattr(self, key)) for key in self.CONFIG_KEYS}
        self._routes = compile_routes(self.routes())
        self._control_routes = compile_routes(self._base_control_routes() + self.control_routes())
        self.reset_state()
        if seed:
            self.seed(seed)

    # ---- lifecycle -------------------------------------------------------------------------

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeServer:
        self._thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True,
            name=f"{self.name}-fake",
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes handlers held by latency/timeout faults
        if self._thread is not None:
            self.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        with self._lock:
            conns = list(self._conns)
        for conn in conns:  # idle keep-alive connections would otherwise linger
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.server_close()

    def __enter__(self) -> FakeServer:
        return self.start() if self._thread is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._lock:
            self._conns.add(request)
        super().process_request(request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Sockets that a fault reset or that the client dropped are expected, not errors.
        if isinstance(sys.exc_info()[1], (OSError, ValueError)):
            return
        super().handle_error(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._lock:
            self._conns.discard(request)
        super().shutdown_request(request)

    # ---- hooks for subclasses --------------------------------------------------------------

    def routes(self) -> list[RouteSpec]:
        return []

    def control_routes(self) -> list[RouteSpec]:
        """Provider-specific ``/_fake/...`` routes (inspection helpers)."""
        return []

    def reset_state(self) -> None:
        """Drop all provider state (called by ``__init__`` and ``reset()``)."""

    def seed(self, data: dict[str, Any]) -> dict[str, Any]:
        """Load provider objects from a JSON-shaped dict; return what was created."""
        raise NotImplementedError

    def state(self) -> dict[str, Any]:
        """A JSON-able dump of all provider state."""
        return {}

    def error_response(self, status: int, message: str | None = None) -> Response:
        """The provider's documented error body for ``status``."""
        return json_response(status, {"error": message or "error"})

    def authenticate(self, req: Request) -> Response | None:
        """Return an error response if the request's credential is not accepted."""
        return None

    def precheck(self, req: Request) -> Response | None:
        """Account-level gates after auth (plan gate, quotas)."""
        return None

    def rate_limit_key(self, req: Request) -> str:
        return req.client_ip

    def rate_limit_for(self, req: Request) -> tuple[int, float] | None:
        return self.rate_limit  # type: ignore[return-value]

    def not_found_response(self, req: Request) -> Response:
        """The answer for a path the fake (and so, as far as we know, the provider) lacks."""
        return self.error_response(404)

    def rate_limit_response(self, req: Request) -> Response:
        return self.error_response(429)

    def decorate(self, req: Request, resp: Response) -> None:
        """Add headers every response of this provider carries (e.g. Stripe's Request-Id)."""

    # ---- public test API -------------------------------------------------------------------

    def fail(
        self,
        status: int | None = None,
        *,
        retry_after: int | None = None,
        latency: float = 0.0,
        timeout: bool = False,
        count: int | None = None,
        seconds: float | None = None,
        path: str | None = None,
        method: str | None = None,
        body: str | bytes | dict[str, Any] | None = None,
        content_type: str | None = None,
        commit_then_timeout: bool = False,
        headers: dict[str, str] | None = None,
        reset_connection: bool = False,
        probability: float | None = None,
    ) -> None:
        """Add a fault rule; rules are tried in the order they were added, first match wins.

        ``probability`` (0..1) makes the rule apply to that share of the requests it matches,
        at random; a request it spares goes on to the next rule."""
        rule = FaultRule(
            status=status, retry_after=retry_after, latency=latency, timeout=timeout, count=count,
            seconds=seconds, path=path, method=method, body=body, content_type=content_type,
            commit_then_timeout=commit_then_timeout, headers=headers,
            reset_connection=reset_connection, probability=probability,
        )
        if seconds is not None:
            rule.until = time.monotonic() + seconds
        with self._lock:
            self._faults.append(rule)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def faults(self) -> list[dict[str, Any]]:
        with self._lock:
            now = time.monotonic()
            return [r.to_dict() for r in self._faults if not r.expired(now)]

    def configure(self, **options: Any) -> None:
        """Change run-time options (e.g. ``plan_gate=True``); ``reset()`` restores them."""
        unknown = set(options) - set(self.CONFIG_KEYS)
        if unknown:
            raise ControlError(f"unknown option(s): {', '.join(sorted(unknown))}")
        for key, value in options.items():
            _check_choice(self.CHOICES, key, value)
        with self._lock:
            for key, value in options.items():
                if key == "rate_limit" or key.endswith("_rate_limit"):
                    value = tuple(value) if value else None
                    self._hits.clear()
                setattr(self, key, value)

    def config(self) -> dict[str, Any]:
        return {key: getattr(self, key) for key in self.CONFIG_KEYS}

    def reset(self) -> None:
        """Back to the freshly started fake: no state but the initial seed, no calls, no faults."""
        with self._lock:
            self.calls.clear()
            self._faults.clear()
            self._hits.clear()
            for key, value in self._initial_config.items():
                setattr(self, key, copy.deepcopy(value))
            self.reset_state()
            if self.initial_seed:
                self.seed(copy.deepcopy(self.initial_seed))

    def calls_to(self, path: str, method: str | None = None) -> list[Call]:
        """Calls whose path starts with ``path`` (and whose method is ``method``, if given)."""
        with self._lock:
            return [
                c for c in self.calls
                if c.path.startswith(path) and (method is None or c.method == method.upper())
            ]

    # ---- request handling ------------------------------------------------------------------

    def _dispatch(self, h: _Handler) -> None:
        split = urlsplit(h.path)
        headers = {k.lower(): v for k, v in h.headers.items()}
        length = int(headers.get("content-length") or 0)
        raw = h.rfile.read(length) if length > 0 else b""
        body, body_error = _parse_body(raw, headers.get("content-type", ""))
        scheme, credential = parse_auth(headers)
        req = Request(
            method=h.command, path=split.path, query=parse_qs(split.query, keep_blank_values=True),
            headers=headers, raw_body=raw, body=body, body_error=body_error,
            client_ip=h.client_address[0], auth_scheme=scheme, credential=credential,
        )
        if req.path.startswith("/_fake/"):
            self._send(h, self._handle_control(req))
            return

        rule = self._take_fault(req)
        fault_kind: str | None = None
        if rule is not None and rule.latency:
            fault_kind = "latency"
            if self._stopping.wait(rule.latency):
                return
        if rule is not None and (rule.timeout or rule.reset_connection):
            kind = "timeout" if rule.timeout else "reset_connection"
            self._record(req, 0, False, kind)  # status 0: no answer was sent
            if rule.timeout:
                self._stopping.wait(HANG_SECONDS)
            else:
                _reset_socket(h.connection)
            h.close_connection = True
            return
        if rule is not None and rule.status:
            resp = self._fault_response(rule)
            fault_kind = "status"
        else:
            resp = self._handle(req)
            fault_kind = resp.fault or fault_kind
        if rule is not None and rule.commit_then_timeout and not rule.status:
            self._record(req, resp.status, resp.changed, "commit_then_timeout")
            self._stopping.wait(HANG_SECONDS)
            h.close_connection = True
            return
        self._record(req, resp.status, resp.changed, fault_kind)
        self._send(h, resp, req)

    def _handle(self, req: Request) -> Response:
        with self._lock:
            try:
                limited = self._rate_limited(req)
                if limited is not None:
                    return limited
                denied = self.authenticate(req) or self.precheck(req)
                if denied is not None:
                    return denied
                if req.body_error is not None:
                    return self.error_response(400, req.body_error)
                route, args = _match(self._routes, req)
                if route is None:
                    return self.not_found_response(req)
                req.args = args
                return route.handler(req)
            except Exception:  # a bug in the fake must still answer, and loudly
                traceback.print_exc(file=sys.stderr)
                return self.error_response(500)

    def _rate_limited(self, req: Request) -> Response | None:
        limit = self.rate_limit_for(req)
        if not limit:
            return None
        max_requests, window = limit
        now = time.monotonic()
        hits = self._hits.setdefault(self.rate_limit_key(req), deque())
        while hits and hits[0] <= now - window:
            hits.popleft()
        if len(hits) >= max_requests:
            # Rejected requests do not count: a client that backs off for one window recovers.
            resp = self.rate_limit_response(req)
            resp.fault = "rate_limit"
            return resp
        hits.append(now)
        return None

    def _take_fault(self, req: Request) -> FaultRule | None:
        with self._lock:
            now = time.monotonic()
            self._faults = [r for r in self._faults if not r.expired(now)]
            for rule in self._faults:
                if rule.matches(req, now):
                    if rule.count is not None:
                        rule.count -= 1
                    return rule
        return None

    def _fault_response(self, rule: FaultRule) -> Response:
        assert rule.status is not None
        if rule.body is None:
            resp = self.error_response(rule.status)
        else:
            resp = Response(rule.status, rule.body, content_type=rule.content_type)
        if rule.content_type:
            resp.content_type = rule.content_type
        if rule.retry_after is not None:
            resp.headers["Retry-After"] = str(rule.retry_after)
        resp.headers.update(rule.headers or {})
        return resp

    def _record(self, req: Request, status: int, changed: bool, fault: str | None) -> None:
        call = Call(
            method=req.method, path=req.path, query=req.query, headers=req.headers, body=req.body,
            raw_body=req.raw_body, status=status, changed=changed, at=time.time(),
            auth_scheme=req.auth_scheme, fault=fault,
        )
        with self._lock:
            self.calls.append(call)

    def _send(self, h: _Handler, resp: Response, req: Request | None = None) -> None:
        if req is not None:
            self.decorate(req, resp)
        payload, content_type = resp.encode()
        if resp.status == 204:
            payload = b""
        try:
            h.send_response(resp.status)
            if content_type and payload:
                h.send_header("Content-Type", content_type)
            for name, value in resp.headers.items():
                h.send_header(name, value)
            h.send_header("Content-Length", str(len(payload)))
            h.end_headers()
            if payload and h.command != "HEAD":
                h.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            h.close_connection = True  # the client gave up (e.g. its own timeout); not our bug

    # ---- control API -----------------------------------------------------------------------

    def _base_control_routes(self) -> list[RouteSpec]:
        return [
            ("GET", r"/_fake/calls$", self._ctl_calls),
            ("DELETE", r"/_fake/calls$", self._ctl_clear_calls),
            ("GET", r"/_fake/faults$", lambda req: json_response(200, {"faults": self.faults()})),
            ("POST", r"/_fake/faults$", self._ctl_add_fault),
            ("DELETE", r"/_fake/faults$", self._ctl_clear_faults),
            ("POST", r"/_fake/reset$", self._ctl_reset),
            ("GET", r"/_fake/state$", lambda req: json_response(200, self._locked_state())),
            ("POST", r"/_fake/seed$", self._ctl_seed),
            ("GET", r"/_fake/config$", lambda req: json_response(200, jsonable(self.config()))),
            ("POST", r"/_fake/config$", self._ctl_configure),
        ]

    def _handle_control(self, req: Request) -> Response:
        route, args = _match(self._control_routes, req)
        if route is None:
            return json_response(404, {"error": f"no control route {req.method} {req.path}"})
        if req.body_error is not None:
            return json_response(400, {"error": req.body_error})
        req.args = args
        try:
            return route.handler(req)
        except (ControlError, TypeError, ValueError, KeyError) as exc:
            return json_response(400, {"error": str(exc)})

    def _locked_state(self) -> dict[str, Any]:
        with self._lock:
            return jsonable(self.state())

    def _ctl_calls(self, req: Request) -> Response:
        since = int(req.q("since") or 0)
        with self._lock:
            calls = [c.to_dict() for c in self.calls[since:]]
            total = len(self.calls)
        return json_response(200, {"calls": calls, "next": total})

    def _ctl_clear_calls(self, req: Request) -> Response:
        with self._lock:
            self.calls.clear()
        return json_response(200, {"ok": True})

    def _ctl_add_fault(self, req: Request) -> Response:
        if not isinstance(req.body, dict):
            raise ControlError("expected a JSON object with the keyword arguments of fail()")
        unknown = set(req.body) - FAULT_FIELDS
        if unknown:
            raise ControlError(f"unknown fault field(s): {', '.join(sorted(unknown))}")
        self.fail(**req.body)
        return json_response(201, {"faults": self.faults()})

    def _ctl_clear_faults(self, req: Request) -> Response:
        self.clear_faults()
        return json_response(200, {"faults": []})

    def _ctl_reset(self, req: Request) -> Response:
        self.reset()
        return json_response(200, {"ok": True})

    def _ctl_seed(self, req: Request) -> Response:
        if not isinstance(req.body, dict):
            raise ControlError("expected a JSON object")
        with self._lock:
            created = self.seed(req.body)
        return json_response(201, jsonable(created))

    def _ctl_configure(self, req: Request) -> Response:
        if not isinstance(req.body, dict):
            raise ControlError("expected a JSON object of options")
        self.configure(**req.body)
        return json_response(200, jsonable(self.config()))


def _check_choice(choices: dict[str, tuple[Any, ...]], key: str, value: Any) -> None:
    if key in choices and value not in choices[key]:
        allowed = ", ".join(repr(c) for c in choices[key])
        raise ControlError(f"{key}={value!r} is not one of: {allowed}")


def _match(routes: list[Route], req: Request) -> tuple[Route | None, dict[str, str]]:
    for route in routes:
        if route.method == req.method:
            m = route.pattern.match(req.path)
            if m:
                return route, m.groupdict()
    return None, {}


def _parse_body(raw: bytes, content_type: str) -> tuple[Any, str | None]:
    """Parse a request body by its content type; an undeclared body is parsed as JSON if it can."""
    if not raw:
        return None, None
    ctype = content_type.lower()
    if "x-www-form-urlencoded" in ctype:
        form = parse_qs(raw.decode("utf-8", errors="replace"), keep_blank_values=True)
        return {k: v[0] if len(v) == 1 else v for k, v in form.items()}, None
    try:
        return json.loads(raw), None
    except (ValueError, UnicodeDecodeError) as exc:
        if "json" in ctype:
            return None, f"Malformed JSON body: {exc}"
        return None, None


def _reset_socket(conn: socket.socket) -> None:
    """Close with RST (SO_LINGER 0) so the client sees 'connection reset', not a clean EOF."""
    try:
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()
    except OSError:
        pass


def jsonable(value: Any) -> Any:
    """Sets and tuples → sorted lists / lists, so Python-side state can be dumped as JSON."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (set, frozenset)):
        return sorted(jsonable(v) for v in value)
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value
