"""The admin app shell: sign-in, roles, and the doctor page."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.urls import NoReverseMatch, URLPattern, URLResolver, get_resolver, reverse

from frontdesk.audit.models import AuditEntry
from frontdesk.web.roles import role_of, set_role

pytestmark = pytest.mark.django_db
PUBLIC = {"intake-stripe", "ops-healthz", "ops-readyz", "ops-metrics", "web-login", "web-logout"}


def user(role: str | None) -> Any:
    u = get_user_model().objects.create_user(f"u-{role}", password="a-long-password-123")
    if role:
        set_role(u, role)
    return u


def test_roles_include_the_ones_before_them() -> None:
    assert role_of(user("operator")) == "operator"
    admin = user("admin")
    set_role(admin, "viewer")
    assert role_of(admin) == "viewer"
    assert role_of(user(None)) is None


def _named_urls() -> list[str]:
    names = []

    def walk(patterns: list[Any]) -> None:
        for p in patterns:
            if isinstance(p, URLResolver):
                walk(p.url_patterns)
            elif isinstance(p, URLPattern) and p.name:
                names.append(p.name)
    walk(get_resolver().url_patterns)
    return names


def test_every_page_needs_sign_in(client: Any) -> None:
    for name in set(_named_urls()) - PUBLIC:
        try:
            url = reverse(name)
        except NoReverseMatch:
            continue  # a page of one object; tests/web/test_access.py checks those with real ids
        response = client.get(url)
        assert response.status_code == 302 and "/login" in response["Location"], name


def test_the_doctor_page_needs_the_operator_role(client: Any, fakes: Any, rules: Any) -> None:
    client.force_login(user("viewer"))
    assert client.get(reverse("web-doctor")).status_code == 403
    client.force_login(user("operator"))
    page = client.get(reverse("web-doctor"))
    assert page.status_code == 200
    assert b"No worker has been seen in the last minute" in page.content
    assert b"circle-test-token" not in page.content and b"kit-test-key" not in page.content
    assert "default-src 'self'" in page["Content-Security-Policy"]


def test_sign_in_with_a_password(client: Any) -> None:
    user("viewer")
    page = client.post(reverse("web-login"), {"username": "u-viewer", "password": "wrong"})
    assert b"didn't match" in page.content
    response = client.post(reverse("web-login"), {"username": "u-viewer", "password": "a-long-password-123"})
    assert response.status_code == 302


def test_createadmin_creates_an_admin_and_audits_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FRONTDESK_ADMIN_PASSWORD", "correct-horse-battery-9")
    call_command("createadmin", "--username", "founder", "--email", "f@example.com")
    founder = get_user_model().objects.get(username="founder")
    assert role_of(founder) == "admin" and founder.check_password("correct-horse-battery-9")
    assert AuditEntry.objects.get(action="user_created").target == "founder"
    monkeypatch.setenv("FRONTDESK_ADMIN_PASSWORD", "short")
    from django.core.management.base import CommandError
    with pytest.raises(CommandError, match="too short"):
        call_command("createadmin", "--username", "other")
