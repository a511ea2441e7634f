"""The OpenAPI document: public, valid, in step with the URLs, and true to what the API
answers (Schemathesis generates requests from it against the Django WSGI app)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.urls import URLPattern, URLResolver, get_resolver, resolve
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from frontdesk.api import views
from frontdesk.api.openapi import build

from .conftest import Api, secrets_of

pytestmark = pytest.mark.django_db
METHODS = ("get", "post", "put", "patch", "delete")


def api_patterns() -> Iterator[tuple[str, Any]]:
    """Every URL pattern under api/v1/ as an OpenAPI path, with its view."""

    def walk(patterns: list[Any], prefix: str) -> Iterator[tuple[str, Any]]:
        for p in patterns:
            if isinstance(p, URLResolver):
                yield from walk(p.url_patterns, prefix + str(p.pattern))
            elif isinstance(p, URLPattern):
                yield prefix + str(p.pattern), p.callback

    for route, callback in walk(get_resolver().url_patterns, "/"):
        if route.startswith("/api/v1/"):
            yield re.sub(r"<[a-z_]+:([a-z_]+)>", r"{\1}", route), callback


def test_the_document_is_public_and_valid_openapi_3_1(api: Api) -> None:
    doc = api.get("/openapi.json", role=None)
    assert doc == build()
    assert doc["openapi"] == "3.1.0"
    assert doc["components"]["securitySchemes"]["bearer"] == {
        "type": "http", "scheme": "bearer", "bearerFormat": "fdk_…",
        "description": "A token from `frontdesk tokens create`."}
    schemathesis.openapi.from_dict(doc).validate()  # against the OpenAPI 3.1 meta-schema


def test_every_url_is_documented_and_every_documented_operation_is_served(api: Api) -> None:
    doc = build()
    served = {}
    for path, callback in api_patterns():
        if callback is views.not_found:  # the JSON 404 for anything else
            continue
        assert path in doc["paths"], f"{path} is served but not documented"
        served[path] = callback
    assert set(doc["paths"]) == set(served), "documented paths that are not served"
    for path, item in doc["paths"].items():
        documented = {m.upper() for m in item if m in METHODS}
        url = re.sub(r"\{[a-z_]+\}", lambda m: "evt_x" if m[0] == "{event_id}" else "1", path)
        assert resolve(url).func is served[path]
        for method in METHODS:
            answer = api.call(method.upper(), url.removeprefix("/api/v1"), None)
            if method.upper() in documented:
                assert answer.status_code in (200, 401), (method, path)
            else:
                assert answer.status_code == 405, (method, path)
                assert set(answer["Allow"].split(", ")) == documented


def test_every_operation_documents_its_errors_and_role() -> None:
    for path, item in build()["paths"].items():
        for method, op in item.items():
            statuses = set(op["responses"])
            if op.get("security") == []:
                assert "Public" in op["description"]
                continue
            assert "401" in statuses and "role" in op["description"], (method, path)
            if "{" in path:
                assert "404" in statuses
            if method == "post" and "requestBody" in op:
                assert "400" in statuses and "413" in statuses


@contextmanager
def wsgi_app() -> Iterator[WSGIHandler]:
    """The real WSGI application, inside the test's transaction. Like Django's own test
    client, it must not close the connection that holds the transaction after each request."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield WSGIHandler()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance, negative_data_rejection, ignored_auth]


def test_schemathesis_finds_no_server_error_and_no_answer_off_the_schema(world: Any, tokens: dict[str, str]) -> None:
    with wsgi_app() as app:
        fuzz(schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app), world, tokens)


def fuzz(schema: Any, world: Any, tokens: dict[str, str]) -> None:
    headers = {"Authorization": f"Bearer {tokens['admin']}"}
    secrets = secrets_of(tokens)
    real = {"event_id": world.first["id"], "job_id": world.review.pk, "customer_id": world.review.customer_id}
    runs = 0

    for result in schema.get_all_operations():
        operation = result.ok()
        names = {p.name for p in operation.path_parameters}
        strategies = [operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE)]
        if names and names <= set(real):
            strategies.append(operation.as_strategy(
                GenerationMode.POSITIVE, path_parameters={n: real[n] for n in names}))
        for strategy in strategies:
            @hypothesis_settings(max_examples=15, deadline=None, derandomize=True, database=None,
                                 suppress_health_check=list(HealthCheck))
            @given(case=strategy)
            def run(case: Any) -> None:
                nonlocal runs
                runs += 1
                response = case.call(headers=headers)
                case.validate_response(response, checks=CHECKS, headers=headers)
                text = response.text
                assert not any(s in text for s in secrets), f"a secret leaked in {case.method} {case.path}"

            run()
    print(f"schemathesis: {runs} requests")
    assert runs > 200
