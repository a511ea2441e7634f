"""Who may open and do what, driven from the URL resolver: a new admin-app URL without an
entry in EXPECTED fails here, and every entry is checked for anonymous visitors and each role."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from .conftest import ROLES, as_role

pytestmark = pytest.mark.django_db

PUBLIC = {"web-login", "web-logout"}
# name → (least role, method). POST entries are the actions.
EXPECTED = {
    "web-home": ("viewer", "GET"),
    "web-jobs": ("viewer", "GET"),
    "web-job": ("viewer", "GET"),
    "web-events": ("viewer", "GET"),
    "web-event": ("viewer", "GET"),
    "web-event-progress": ("viewer", "GET"),
    "web-customers": ("viewer", "GET"),
    "web-customer": ("viewer", "GET"),
    "web-intake": ("viewer", "GET"),
    "web-audit": ("viewer", "GET"),
    "web-rules": ("viewer", "GET"),
    "web-rules-version": ("viewer", "GET"),
    "web-doctor": ("operator", "GET"),
    "web-test-event": ("operator", "GET"),
    "web-jobs-retry": ("operator", "POST"),
    "web-job-retry": ("operator", "POST"),
    "web-job-cancel": ("operator", "POST"),
    "web-job-resolve": ("operator", "POST"),
    "web-event-replay": ("operator", "POST"),
    "web-customer-override": ("operator", "POST"),
    "web-override-remove": ("operator", "POST"),
    "web-rules-preview": ("admin", "GET"),
    "web-rules-apply": ("admin", "POST"),
    "web-users": ("admin", "GET"),
    "web-user-role": ("admin", "POST"),
    "web-user-active": ("admin", "POST"),
}
# Forms that are pages (GET) but also change something when posted.
POST_TOO = {"web-test-event": "operator", "web-users": "admin", "web-rules-preview": "admin"}


def web_patterns() -> dict[str, URLPattern]:
    found: dict[str, URLPattern] = {}

    def walk(patterns: list[Any]) -> None:
        for p in patterns:
            if isinstance(p, URLResolver):
                walk(p.url_patterns)
            elif isinstance(p, URLPattern) and p.name and p.name.startswith("web-"):
                found[p.name] = p
    walk(get_resolver().url_patterns)
    return found


def url_for(name: str, world: SimpleNamespace) -> str:
    """The URL with a real object for each argument; an argument nobody knows fails the test."""
    samples = {"pk": {"job": world.job.pk, "event": world.event.pk, "customer": world.customer.pk,
                      "override": world.override.pk, "user": world.user.pk},
               "number": {"rules": world.rules.number}}
    converters = web_patterns()[name].pattern.converters
    kwargs = {}
    for arg in converters:
        assert arg in samples, f"{name}: add a sample value for <{arg}> to tests/web/test_access.py"
        options = samples[arg]
        kind = next((k for k in options if k in name), None)
        assert kind is not None, f"{name}: which object does <{arg}> name? extend url_for()"
        kwargs[arg] = options[kind]
    return reverse(name, kwargs=kwargs)


def test_every_admin_app_url_has_an_access_rule() -> None:
    names = set(web_patterns())
    assert names - PUBLIC - set(EXPECTED) == set(), "new URL: add it to EXPECTED with its role and method"
    assert set(EXPECTED) - names == set(), "EXPECTED names a URL that no longer exists"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_the_view_declares_the_expected_role(name: str) -> None:
    view = web_patterns()[name].callback
    role, method = EXPECTED[name]
    assert getattr(view, "required_role", None) == role
    assert bool(getattr(view, "is_action", False)) == (method == "POST")


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_anonymous_visitors_are_sent_to_sign_in(name: str, client: Client, world: SimpleNamespace) -> None:
    url = url_for(name, world)
    for method in ("get", "post"):
        response = getattr(client, method)(url)
        assert response.status_code == 302, (name, method)
        assert response["Location"].startswith(reverse("web-login") + "?next="), name


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_role_gets_what_it_may(name: str, client: Client, staff: dict[str, Any], world: SimpleNamespace,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("frontdesk.web.views.doctor.run_checks", lambda: [])  # no provider calls here
    needed, method = EXPECTED[name]
    url = url_for(name, world)
    for role in ROLES:
        allowed = ROLES.index(role) >= ROLES.index(needed)
        as_role(client, staff, role)
        response = client.post(url) if method == "POST" else client.get(url)
        if allowed:
            assert response.status_code in ((302, 303) if method == "POST" else (200,)), (name, role, response.status_code)
        else:
            assert response.status_code == 403, (name, role)
        if method == "GET":
            # Every page refuses changes from a role below its own, and a viewer may never post.
            post = client.post(url)
            if not allowed or (name in POST_TOO and ROLES.index(role) < ROLES.index(POST_TOO[name])):
                assert post.status_code == 403, (name, role, "POST")
            elif name not in POST_TOO:
                assert post.status_code in (403, 405), (name, role, "POST")


def test_a_viewer_gets_403_on_every_action(client: Client, staff: dict[str, Any], world: SimpleNamespace) -> None:
    as_role(client, staff, "viewer")
    for name, (_, method) in EXPECTED.items():
        if method == "POST" or name in POST_TOO:
            assert client.post(url_for(name, world), {"reason": "x"}).status_code == 403, name


def test_forms_need_the_csrf_token(staff: dict[str, Any], world: SimpleNamespace) -> None:
    client = Client(enforce_csrf_checks=True)
    as_role(client, staff, "admin")
    response = client.post(url_for("web-job-retry", world))
    assert response.status_code == 403
    from frontdesk.ledger.models import Job

    assert Job.objects.get(pk=world.job.pk).state == "queued"
    assert b"csrfmiddlewaretoken" in client.get(url_for("web-job", world)).content


def test_pages_carry_the_strict_content_security_policy(client: Client, staff: dict[str, Any]) -> None:
    as_role(client, staff, "viewer")
    page = client.get(reverse("web-home"))
    assert "script-src 'self'" in page["Content-Security-Policy"]
    assert "no-store" in page["Cache-Control"]  # Back after signing out shows nothing
    assert b"/static/web/htmx.min.js" in page.content
    assert b"<script>" not in page.content and b"style=" not in page.content
