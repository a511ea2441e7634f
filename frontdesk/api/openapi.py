"""The OpenAPI 3.1 document at /api/v1/openapi.json, built from the route table and the
endpoints' own declarations (parameters, body fields, response schemas, roles)."""

from __future__ import annotations

from functools import cache
from typing import Any

from django.http import HttpRequest, JsonResponse

from frontdesk.api.auth import Call, Operation, api_view
from frontdesk.api.schemas import COMPONENTS, ref
from frontdesk.api.spec import object_schema

DESCRIPTION = """The same data and actions as frontdesk's admin screens: events, jobs, customers,
overrides, rules and a health summary.

Authenticate with a token from `frontdesk tokens create --role viewer|operator|admin --name N`:
`Authorization: Bearer fdk_…`. Roles include the ones before them: **viewer** reads, **operator**
also acts on jobs and access, **admin** also previews and loads rules. This document is public.

Lists are newest first, `limit` (1–100, default 50) at a time; pass a page's `next_cursor` as
`cursor` for the next one. Times are ISO 8601 in UTC. Errors are `{"error": code, "detail": text}`.
See docs/api.md."""

ERRORS: dict[int, tuple[str, str]] = {
    400: ("BadRequest", "The input is not valid: bad JSON, a wrong type, a missing field, or a value out of range."),
    401: ("Unauthorized", "No token, or an unknown or revoked one."),
    403: ("Forbidden", "The token's role is not enough, e.g. `needs the operator role`."),
    404: ("NotFound", "No such object."),
    409: ("Conflict", "The action cannot be done in the object's current state; `detail` says why."),
    413: ("TooLarge", "The body is too large."),
}
STATUS_TEXT = {200: "OK", 201: "Created", 202: "Accepted"}


def _responses() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for status, (name, text) in ERRORS.items():
        out[name] = {"description": text, "content": {"application/json": {"schema": ref("Error")}}}
        if status == 401:
            out[name]["headers"] = {"WWW-Authenticate": {"description": "Always `Bearer`.",
                                                         "schema": {"type": "string"}}}
    return out


def _operation(name: str, op: Operation, path_params: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    from frontdesk.api.routes import PATH_PARAMS

    role = f"Needs the **{op.role}** role." if op.role else "Public: no token needed."
    out: dict[str, Any] = {
        "operationId": name,
        "summary": op.summary,
        "description": f"{op.description}\n\n{role}".strip(),
        "tags": [op.tag or "meta"],
        "parameters": [{"name": p, "in": "path", "required": True, "description": PATH_PARAMS[p], "schema": schema}
                       for p, schema in path_params] +
                      [{"name": f.name, "in": "query", "required": f.required, "description": f.description,
                        "schema": f.schema()} for f in op.query],
        "responses": {str(s): {"description": STATUS_TEXT[s], "content": {"application/json": {"schema": op.response}}}
                      for s in op.statuses},
    }
    if op.body is not None:
        out["requestBody"] = {"required": op.body_required,
                              "content": {"application/json": {"schema": object_schema(op.body)}}}
    errors = set(op.errors)
    if op.query or op.body is not None:
        errors.add(400)
    if op.role is not None:
        errors.add(401)
        if op.role != "viewer":
            errors.add(403)
    if path_params:
        errors.add(404)
    if op.conflict or op.methods != ("GET",):  # every change can meet a concurrent one
        errors.add(409)
    if op.body is not None:
        errors.add(413)
    for status in sorted(errors):
        out["responses"][str(status)] = {"$ref": f"#/components/responses/{ERRORS[status][0]}"}
    if op.role is None:
        out["security"] = []
    return out


@cache
def build() -> dict[str, Any]:
    from frontdesk.api.routes import ROUTES

    paths: dict[str, Any] = {}
    for route in ROUTES:
        paths[route.openapi_path] = {
            method.lower(): _operation(route.handlers[method].__name__, op, route.parameters)
            for method, op in route.operations.items()}
    return {
        "openapi": "3.1.0",
        "info": {"title": "frontdesk API", "version": "1.0.0", "description": DESCRIPTION},
        "paths": paths,
        "components": {
            "schemas": COMPONENTS,
            "responses": _responses(),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "fdk_…",
                                           "description": "A token from `frontdesk tokens create`."}},
        },
        "security": [{"bearer": []}],
        "tags": [{"name": t} for t in ("events", "jobs", "customers", "rules", "health", "meta")],
    }


@api_view(None, ["GET"], summary="This document (OpenAPI 3.1)", tag="meta", response={"type": "object"})
def document(request: HttpRequest, call: Call) -> JsonResponse:
    return JsonResponse(build())
