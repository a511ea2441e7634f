"""Bearer-token authentication and the ``@api_view`` decorator every endpoint uses: it checks
the token, the role, the method, the query and the JSON body, and turns errors into JSON
answers. Bad input is a 4xx with a reason, never a 500."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import wraps
from typing import Any

from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.db import IntegrityError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from frontdesk.api.models import ApiToken
from frontdesk.api.spec import ApiError, Field, bad_request, parse_body, parse_query
from frontdesk.logs import get_logger
from frontdesk.ops.actions import ActionError
from frontdesk.web.roles import ROLES

log = get_logger(__name__)
BODY_METHODS = ("POST", "PUT", "PATCH", "DELETE")
View = Callable[..., HttpResponse]


def allows(role: str, needed: str) -> bool:
    """Roles include the ones before them, as on the screens (frontdesk.web.roles)."""
    return ROLES.index(role) >= ROLES.index(needed)


def error(status: int, code: str, detail: str, headers: dict[str, str] | None = None,
          **extra: Any) -> JsonResponse:
    return JsonResponse({"error": code, "detail": detail, **extra}, status=status, headers=headers)


def unauthorized(detail: str) -> JsonResponse:
    return error(401, "unauthorized", detail, headers={"WWW-Authenticate": "Bearer"})


@dataclass
class Call:
    """What a view gets besides the request: who is calling, and the checked input."""

    token: ApiToken | None
    query: dict[str, Any] = field(default_factory=dict)
    body: dict[str, Any] = field(default_factory=dict)

    @property
    def actor(self) -> str:
        return self.token.actor if self.token else "api"


@dataclass(frozen=True)
class Operation:
    """An endpoint's contract, read by the dispatcher and by the OpenAPI document."""

    role: str | None
    methods: tuple[str, ...]
    summary: str
    description: str
    query: tuple[Field, ...]
    body: tuple[Field, ...] | None
    body_required: bool
    response: dict[str, Any]
    statuses: tuple[int, ...]
    conflict: bool
    errors: tuple[int, ...]
    tag: str


def _bearer(request: HttpRequest) -> ApiToken | JsonResponse:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if not header:
        return unauthorized("send Authorization: Bearer fdk_… (create a token with `frontdesk tokens create`)")
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return unauthorized("the Authorization header must be 'Bearer <token>'")
    found = ApiToken.authenticate(token.strip())
    if found is None:
        return unauthorized("the token is unknown or revoked")
    return found


def _json_body(request: HttpRequest) -> Any:
    raw = request.body
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except UnicodeDecodeError:
        raise bad_request("the body is not UTF-8 text") from None
    except (ValueError, RecursionError) as exc:
        raise ApiError(400, "invalid_json", f"the body is not valid JSON: {exc}") from None


def api_view(role: str | None = "viewer", methods: Sequence[str] = ("GET",), *, summary: str,
             description: str = "", query: Sequence[Field] = (), body: Sequence[Field] | None = None,
             body_required: bool = True, response: dict[str, Any] | None = None, statuses: Sequence[int] = (200,),
             conflict: bool = False, errors: Sequence[int] = (), tag: str = "") -> Callable[[View], View]:
    """Wrap a view ``view(request, call, **path)``. ``role=None`` makes it public.

    Order of checks: method (405), token (401), role (403), query and body (400), then the
    view; ActionError from the shared actions becomes 409 with its message."""
    if role is not None and role not in ROLES:
        raise ValueError(f"unknown role {role!r}")
    op = Operation(role, tuple(m.upper() for m in methods), summary, description, tuple(query),
                   tuple(body) if body is not None else None, body_required, response or {}, tuple(statuses),
                   conflict, tuple(errors), tag)

    def decorator(view: View) -> View:
        @csrf_exempt  # token authentication, no cookies: nothing for a cross-site form to ride on
        @wraps(view)
        def wrapped(request: HttpRequest, **kwargs: Any) -> HttpResponse:
            if request.method not in op.methods:
                return method_not_allowed(op.methods)
            try:
                token: ApiToken | None = None
                if op.role is not None:
                    found = _bearer(request)
                    if isinstance(found, JsonResponse):
                        return found
                    token = found
                    if not allows(token.role, op.role):
                        return error(403, "forbidden", f"needs the {op.role} role")
                call = Call(token, parse_query(op.query, request.GET))
                if op.body is not None and request.method in BODY_METHODS:
                    data = _json_body(request)
                    if data is None and op.body_required:
                        raise bad_request("a JSON object body is required")
                    call.body = parse_body(op.body, {} if data is None else data)
                return view(request, call, **kwargs)
            except ApiError as exc:
                return error(exc.status, exc.error, exc.detail, **exc.extra)
            except ActionError as exc:
                return error(409, "conflict", str(exc))
            except IntegrityError:  # e.g. retrying a job while another one for the same customer and provider waits
                log.warning("api_conflict", path=request.path, method=request.method)
                return error(409, "conflict", "this conflicts with a change made meanwhile (for a job: another job "
                             "for the same customer and provider is already waiting); reload and try again")
            except RequestDataTooBig:
                return error(413, "too_large", "the body is too large")
            except SuspiciousOperation as exc:  # e.g. too many query fields
                return error(400, "bad_request", str(exc))
            except Exception:  # a bug: answer in JSON without details, and log it
                log.exception("api_error", path=request.path, method=request.method)
                return error(500, "internal_error", "something went wrong on our side; it was logged")

        wrapped.api = op  # type: ignore[attr-defined]
        return wrapped

    return decorator


def method_not_allowed(allowed: Sequence[str]) -> JsonResponse:
    return error(405, "method_not_allowed", f"use {', '.join(allowed)}", headers={"Allow": ", ".join(allowed)})
