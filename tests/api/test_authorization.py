"""The same authorization as the screens: anonymous 401 everywhere but the document, viewers
read, operators act, admins also change rules."""

from __future__ import annotations

import re
from typing import Any

import pytest

from frontdesk.api.auth import allows
from frontdesk.api.routes import ROUTES
from frontdesk.web.roles import ROLES

from .conftest import Api

pytestmark = pytest.mark.django_db
SAMPLE = {"fdk_id": "999999", "fdk_key": "evt_missing"}


def sample_url(path: str) -> str:
    return "/" + re.sub(r"<([a-z_]+):[a-z_]+>", lambda m: SAMPLE[m[1]], path)


CASES = [(route, method, op) for route in ROUTES for method, op in route.operations.items()]


@pytest.mark.parametrize("route,method,op", CASES, ids=[f"{m} {r.path}" for r, m, _ in CASES])
def test_every_endpoint_checks_the_token_and_the_role(api: Api, route: Any, method: str, op: Any) -> None:
    url = sample_url(route.path)
    anonymous = api.call(method, url, None)
    if op.role is None:
        assert anonymous.status_code == 200
    else:
        assert anonymous.status_code == 401
        assert anonymous.json()["error"] == "unauthorized"
    for role in ROLES:
        response = api.call(method, url, role)
        if op.role is not None and not allows(role, op.role):
            assert response.status_code == 403, (role, url)
            assert response.json() == {"error": "forbidden", "detail": f"needs the {op.role} role"}
        else:
            assert response.status_code not in (401, 403), (role, url, response.content)


def test_the_roles_per_endpoint_match_the_screens() -> None:
    roles = {f"{m} /{r.path}": op.role for r, m, op in CASES}
    assert {k for k, v in roles.items() if v == "admin"} == {"POST /rules", "POST /rules/preview"}
    assert {k for k, v in roles.items() if v == "operator"} == {
        "POST /events/<fdk_key:event_id>/replay", "POST /jobs/retry", "POST /jobs/<fdk_id:job_id>/retry",
        "POST /jobs/<fdk_id:job_id>/cancel", "POST /jobs/<fdk_id:job_id>/resolve",
        "POST /customers/<fdk_id:customer_id>/overrides", "DELETE /overrides/<fdk_id:override_id>"}
    assert {k for k, v in roles.items() if v is None} == {"GET /openapi.json"}
    assert all(v == "viewer" for k, v in roles.items() if k.startswith("GET ") and k != "GET /openapi.json")


def test_a_wrong_method_is_405_with_allow(api: Api) -> None:
    response = api.call("PATCH", "/events", "admin", expect=405)
    assert response["Allow"] == "GET" and response.json()["error"] == "method_not_allowed"
    response = api.call("PUT", "/rules", "admin", expect=405)
    assert response["Allow"] == "GET, POST"


def test_unknown_urls_are_json_404s(api: Api) -> None:
    for url in ("/nope", "/jobs/abc", "/jobs/0", "/jobs/" + "9" * 30, "/events/evt%20x", "/events/", "/events/a%0Ab", "/%0A"):
        body = api.call("GET", url, "viewer", expect=404).json()
        assert body["error"] == "not_found"
