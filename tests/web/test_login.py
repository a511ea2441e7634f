"""Sign-in: throttled per client address, then 429 with Retry-After."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from frontdesk.ops.throttle import Hit

from .conftest import PASSWORD

pytestmark = pytest.mark.django_db


def test_the_eleventh_attempt_in_five_minutes_is_refused(client: Client, staff: dict[str, Any]) -> None:
    for _ in range(10):
        page = client.post(reverse("web-login"), {"username": "viewer", "password": "wrong"})
        assert page.status_code == 200 and b"didn't match" in page.content
    refused = client.post(reverse("web-login"), {"username": "viewer", "password": PASSWORD})
    assert refused.status_code == 429
    assert 1 <= int(refused["Retry-After"]) <= 300
    assert b"Too many sign-in attempts" in refused.content and b"_auth_user_id" not in refused.content
    assert "_auth_user_id" not in client.session
    # Another address is not affected, and looking at the form is never throttled.
    assert client.get(reverse("web-login")).status_code == 200
    assert Client(REMOTE_ADDR="198.51.100.7").post(reverse("web-login"), {"username": "viewer", "password": PASSWORD}).status_code == 302
    assert Hit.objects.get(key="login:127.0.0.1").count == 11


def test_sign_in_goes_to_the_page_asked_for_and_sign_out_needs_post(client: Client, staff: dict[str, Any]) -> None:
    wanted = reverse("web-jobs")
    login = client.get(wanted)["Location"]
    response = client.post(login, {"username": "viewer", "password": PASSWORD, "next": wanted})
    assert response["Location"] == wanted
    assert client.get(reverse("web-logout")).status_code == 405
    assert client.post(reverse("web-logout")).status_code == 302
    assert client.get(wanted).status_code == 302


def test_an_unsafe_next_is_ignored(client: Client, staff: dict[str, Any]) -> None:
    response = client.post(reverse("web-login"), {"username": "viewer", "password": PASSWORD, "next": "https://evil.example/"})
    assert response["Location"] == reverse("web-home")
