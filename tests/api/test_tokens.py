"""API tokens: the command, hashing, and what the Authorization header must look like."""

from __future__ import annotations

import hashlib
import io
import re
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from frontdesk.api.models import ApiToken
from frontdesk.audit.models import AuditEntry

from .conftest import Api, check, secrets_of

pytestmark = pytest.mark.django_db


def tokens_command(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("tokens", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_create_prints_the_token_once_and_stores_only_its_hash() -> None:
    out, err = tokens_command("create", "--role", "operator", "--name", "zapier", "--by", "sam")
    token = out.strip()
    assert re.fullmatch(r"fdk_[A-Za-z0-9_-]{43}", token)
    assert "not shown again" in err
    row = ApiToken.objects.get()
    assert (row.name, row.role, row.created_by, row.prefix) == ("zapier", "operator", "sam", token[:12])
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in str(list(ApiToken.objects.values()))
    entry = AuditEntry.objects.get(action="api_token_created")
    assert entry.actor == "sam" and entry.after == {"name": "zapier", "role": "operator", "prefix": token[:12]}
    assert token not in str(entry.after) and row.token_hash not in str(entry.after)


def test_list_shows_prefixes_never_secrets() -> None:
    token = tokens_command("create", "--role", "viewer", "--name", "ci")[0].strip()
    listing = tokens_command("list")[0]
    assert "ci" in listing and token[:12] in listing and token not in listing and "never" in listing
    rows = __import__("json").loads(tokens_command("list", "--json")[0])
    assert rows[0]["prefix"] == token[:12] and "token_hash" not in rows[0] and rows[0]["revoked_at"] is None


def test_create_refuses_an_unknown_role_or_an_empty_name() -> None:
    with pytest.raises(CommandError):
        tokens_command("create", "--role", "owner", "--name", "x")
    with pytest.raises(CommandError, match="--name"):
        tokens_command("create", "--role", "viewer", "--name", "  ")


def test_a_revoked_token_is_refused_at_once(client: Any) -> None:
    token = tokens_command("create", "--role", "admin", "--name", "old")[0].strip()
    api = Api(client, {"admin": token})
    api.get("/events", "admin")
    row = ApiToken.objects.get()
    assert tokens_command("revoke", str(row.pk), "--reason", "leaked")[0].startswith("revoked token")
    assert api.get("/events", "admin", expect=401)["detail"] == "the token is unknown or revoked"
    entry = AuditEntry.objects.get(action="api_token_revoked")
    assert entry.reason == "leaked" and entry.target == f"api_token:{row.pk}"
    with pytest.raises(CommandError, match="already revoked"):
        tokens_command("revoke", str(row.pk))
    with pytest.raises(CommandError, match="no token 999"):
        tokens_command("revoke", "999")


def test_last_used_is_recorded(api: Api) -> None:
    assert ApiToken.objects.get(role="viewer").last_used_at is None
    api.get("/health", "viewer")
    assert ApiToken.objects.get(role="viewer").last_used_at is not None
    assert "never" not in tokens_command("list")[0].splitlines()[1]


@pytest.mark.parametrize("header", [
    "", "Bearer", "Bearer ", "Token fdk_abc", "Basic dXNlcjpwYXNz", "Bearer fdk_not-a-real-token",
    "Bearer not-even-prefixed", "Bearer fdk_" + "x" * 5000, "Bearer fdk_é\u2603",
])
def test_a_missing_or_bad_authorization_is_401(client: Any, tokens: dict[str, str], header: str) -> None:
    extra = {"HTTP_AUTHORIZATION": header} if header else {}
    response = client.get("/api/v1/events", **extra)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"
    assert response.json()["error"] == "unauthorized" and response.json()["detail"]
    check(response, "GET", "/api/v1/events", secrets_of(tokens))


def test_the_scheme_is_case_insensitive(client: Any, tokens: dict[str, str]) -> None:
    assert client.get("/api/v1/events", HTTP_AUTHORIZATION=f"bearer {tokens['viewer']}").status_code == 200


def test_token_requests_need_no_csrf_token(tokens: dict[str, str], world: Any) -> None:
    strict = Client(enforce_csrf_checks=True)
    response = strict.post(f"/api/v1/jobs/{world.review.pk}/retry", data="{}", content_type="application/json",
                           HTTP_AUTHORIZATION=f"Bearer {tokens['operator']}")
    assert response.status_code == 200, response.content


def test_session_cookies_do_not_authenticate(client: Any, django_user_model: Any) -> None:
    from frontdesk.web.roles import set_role

    user = django_user_model.objects.create_user("boss", password="a-long-password-123")
    set_role(user, "admin")
    client.force_login(user)
    assert client.get("/api/v1/events").status_code == 401
