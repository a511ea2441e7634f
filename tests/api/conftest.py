"""Calling the JSON API as each role, with every answer checked against the OpenAPI document
and for leaked secrets."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlencode

import jsonschema_rs
import pytest
from django.conf import settings
from django.urls import resolve

from frontdesk.api import views
from frontdesk.api.models import ApiToken
from frontdesk.api.openapi import build
from frontdesk.ledger.models import Job, JobState
from frontdesk.web.roles import ROLES

from ..conftest import drain
from ..test_delivery import buy

ROLES_AND_ANON = (None, *ROLES)


def secrets_of(tokens: dict[str, str]) -> list[str]:
    values = [*settings.STRIPE_WEBHOOK_SECRETS, settings.STRIPE_API_KEY, settings.CIRCLE_API_TOKEN,
              settings.KIT_API_KEY, settings.HUBSPOT_ACCESS_TOKEN, settings.METRICS_TOKEN, settings.SECRET_KEY,
              settings.ALERTS["webhook_secret"], settings.ALERTS["slack_url"], settings.OUTBOUND_WEBHOOK["secret"],
              settings.SUPPORT["slack_url"], *tokens.values(),
              *ApiToken.objects.values_list("token_hash", flat=True)]
    return [v for v in values if v and len(v) >= 8]


def documented(method: str, path: str, status: int) -> dict[str, Any] | None:
    """The documented response for ``status``, or None when the URL is not an operation."""
    match = resolve(path)
    route = getattr(match.func, "route", None)
    if route is None:
        assert match.func is views.not_found
        return None
    doc = build()
    operation = doc["paths"][route.openapi_path].get(method.lower())
    if operation is None:
        assert status == 405, (method, path, status)
        return None
    response = operation["responses"].get(str(status))
    assert response is not None, f"{method} {path} answered {status}, which its document does not list"
    if "$ref" in response:
        response = doc["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
    return response


def check(response: Any, method: str, path: str, secrets: list[str]) -> None:
    assert response["Content-Type"] == "application/json", response.content[:200]
    body = response.json()
    text = response.content.decode()
    for secret in secrets:
        assert secret not in text, f"a secret leaked in {method} {path}"
    spec = documented(method, path.split("?")[0], response.status_code)
    if spec is None:
        assert set(body) == {"error", "detail"}
        return
    schema = spec["content"]["application/json"]["schema"]
    validator = jsonschema_rs.Draft202012Validator({**schema, "components": build()["components"]},
                                                   validate_formats=True)
    errors = [f"{e.instance_path}: {e.message}" for e in validator.iter_errors(body)]
    assert not errors, f"{method} {path} {response.status_code} does not match its schema: {errors[:5]}"
    if response.status_code == 401:
        assert response["WWW-Authenticate"] == "Bearer"


class Api:
    def __init__(self, client: Any, tokens: dict[str, str]) -> None:
        self.client, self.tokens = client, tokens

    def call(self, method: str, path: str, role: str | None = "admin", *, body: Any = None, raw: str | bytes = "",
             query: dict[str, Any] | None = None, expect: int | None = None, **headers: Any) -> Any:
        url = "/api/v1" + path + ("?" + urlencode(query) if query else "")
        if role is not None:
            headers.setdefault("HTTP_AUTHORIZATION", f"Bearer {self.tokens[role]}")
        data = json.dumps(body) if body is not None else raw
        response = self.client.generic(method, url, data=data, content_type="application/json", **headers)
        check(response, method, url, secrets_of(self.tokens))
        if expect is not None:
            assert response.status_code == expect, (method, url, response.status_code, response.content[:500])
        return response

    def get(self, path: str, role: str | None = "viewer", expect: int | None = 200, **query: Any) -> Any:
        return self.call("GET", path, role, query=query, expect=expect).json()

    def post(self, path: str, body: Any = None, role: str | None = "operator", expect: int | None = 200,
             **kw: Any) -> Any:
        return self.call("POST", path, role, body=body, expect=expect, **kw).json()


@pytest.fixture
def tokens(db: None) -> dict[str, str]:
    return {role: ApiToken.issue(f"test-{role}", role, "test")[1] for role in ROLES}


@pytest.fixture
def api(client: Any, tokens: dict[str, str]) -> Api:
    return Api(client, tokens)


@pytest.fixture
def world(client: Any, fakes: Any, rules: Any) -> SimpleNamespace:
    """Two paid checkouts through the real intake and worker; Kit refuses the first buyer once,
    so one job needs review."""
    fakes.kit.fail(422, path="/v4/subscribers", method="POST", count=1, body={"errors": ["Email address is invalid"]})
    first = buy(client, "ada@example.com")
    drain()
    second = buy(client, "bob@example.com")
    drain()
    return SimpleNamespace(first=first, second=second, review=Job.objects.get(state=JobState.NEEDS_REVIEW))
