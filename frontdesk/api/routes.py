"""The one route table of the API. urls.py builds the URL patterns from it and openapi.py the
document, so the two cannot describe different endpoints."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from frontdesk.api import openapi, views
from frontdesk.api.auth import Operation, method_not_allowed
from frontdesk.api.spec import ID_MAX


class IdConverter:
    """A database id: 1 to 18 digits, so a number too big for the database is a 404, not an error."""

    regex = "[1-9][0-9]{0,17}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value: int) -> str:
        return str(value)


class KeyConverter:
    """A provider's id such as evt_1Nv…: letters, digits, '_' and '-'."""

    regex = "[A-Za-z0-9_-]{1,255}"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


CONVERTERS: dict[str, tuple[type, dict[str, Any]]] = {
    "fdk_id": (IdConverter, {"type": "integer", "minimum": 1, "maximum": ID_MAX}),
    "fdk_key": (KeyConverter, {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,255}$"}),
}
PATH_PARAMS = {
    "event_id": "The provider's event id (evt_…).",
    "job_id": "The job's id.",
    "customer_id": "The customer's number.",
    "override_id": "The override's id.",
}
PARAM_RE = re.compile(r"<(?P<converter>[a-z_]+):(?P<name>[a-z_]+)>")


@dataclass(frozen=True)
class Route:
    path: str  # relative to /api/v1/, in Django's syntax
    handlers: dict[str, Callable[..., HttpResponse]]

    @property
    def operations(self) -> dict[str, Operation]:
        return {method: view.api for method, view in self.handlers.items()}  # type: ignore[attr-defined]

    @property
    def openapi_path(self) -> str:
        return "/api/v1/" + PARAM_RE.sub(lambda m: "{" + m["name"] + "}", self.path)

    @property
    def parameters(self) -> list[tuple[str, dict[str, Any]]]:
        return [(m["name"], CONVERTERS[m["converter"]][1]) for m in PARAM_RE.finditer(self.path)]

    def view(self) -> Callable[..., HttpResponse]:
        """One Django view for the path that hands each method to its endpoint."""
        handlers = self.handlers
        allowed = tuple(handlers)

        @csrf_exempt
        def dispatch(request: HttpRequest, **kwargs: Any) -> HttpResponse:
            handler = handlers.get(request.method or "")
            if handler is None:
                return method_not_allowed(allowed)
            return handler(request, **kwargs)

        dispatch.route = self  # type: ignore[attr-defined]
        return dispatch


def route(path: str, **handlers: Callable[..., HttpResponse]) -> Route:
    for method, view in handlers.items():
        op: Operation = view.api  # type: ignore[attr-defined]
        if method not in op.methods:
            raise ImproperlyConfigured(f"{view.__name__} does not accept {method}")
    return Route(path, handlers)


ROUTES: list[Route] = [
    route("openapi.json", GET=openapi.document),
    route("events", GET=views.events),
    route("events/<fdk_key:event_id>", GET=views.event),
    route("events/<fdk_key:event_id>/replay", POST=views.replay_event),
    route("jobs", GET=views.jobs),
    route("jobs/retry", POST=views.retry_jobs),
    route("jobs/<fdk_id:job_id>", GET=views.job),
    route("jobs/<fdk_id:job_id>/retry", POST=views.retry_job),
    route("jobs/<fdk_id:job_id>/cancel", POST=views.cancel_job),
    route("jobs/<fdk_id:job_id>/resolve", POST=views.resolve_job),
    route("customers", GET=views.customers),
    route("customers/<fdk_id:customer_id>", GET=views.customer),
    route("customers/<fdk_id:customer_id>/overrides", POST=views.create_override),
    route("overrides/<fdk_id:override_id>", DELETE=views.remove_override),
    route("rules", GET=views.rules_versions, POST=views.rules_load),
    route("rules/current", GET=views.rules_current),
    route("rules/preview", POST=views.rules_preview),
    route("health", GET=views.health),
]
