"""The Users screen: create with a role, change roles, deactivate; all audited; no lock-out."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from frontdesk.audit.models import AuditEntry
from frontdesk.web.roles import role_of

from .conftest import as_role

pytestmark = pytest.mark.django_db


def test_an_admin_creates_a_user_with_a_role(client: Client, staff: dict[str, Any]) -> None:
    as_role(client, staff, "admin")
    response = client.post(reverse("web-users"), {"username": "sam", "email": "sam@staff.example", "role": "operator",
                                                   "password": "another-long-password-4"})
    assert response.status_code == 302
    sam = get_user_model().objects.get(username="sam")
    assert role_of(sam) == "operator" and sam.check_password("another-long-password-4")
    entry = AuditEntry.objects.get(action="user_created")
    assert (entry.actor, entry.target, entry.after) == ("admin", "sam", {"role": "operator"})
    assert "another-long-password-4" not in str(entry.after) + entry.reason
    assert Client().login(username="sam", password="another-long-password-4")


def test_weak_passwords_and_taken_names_are_refused(client: Client, staff: dict[str, Any]) -> None:
    as_role(client, staff, "admin")
    page = client.post(reverse("web-users"), {"username": "viewer", "role": "viewer", "password": "short"}).content.decode()
    assert "A user with that name exists." in page
    page = client.post(reverse("web-users"), {"username": "new", "role": "viewer", "password": "password"}).content.decode()
    assert "too short" in page or "too common" in page
    assert not AuditEntry.objects.exists()


def test_changing_a_role_is_audited(client: Client, staff: dict[str, Any]) -> None:
    as_role(client, staff, "admin")
    client.post(reverse("web-user-role", args=[staff["viewer"].pk]), {"role": "operator"})
    assert role_of(staff["viewer"]) == "operator"
    entry = AuditEntry.objects.get(action="user_role_changed")
    assert (entry.target, entry.before, entry.after) == ("viewer", {"role": "viewer"}, {"role": "operator"})


def test_a_deactivated_user_is_signed_out_and_can_come_back(client: Client, staff: dict[str, Any]) -> None:
    viewer = Client()
    as_role(viewer, staff, "viewer")
    assert viewer.get(reverse("web-home")).status_code == 200
    as_role(client, staff, "admin")
    client.post(reverse("web-user-active", args=[staff["viewer"].pk]), {"active": "0"})
    assert viewer.get(reverse("web-home")).status_code == 302  # back to sign-in
    assert AuditEntry.objects.get(action="user_deactivated").target == "viewer"
    client.post(reverse("web-user-active", args=[staff["viewer"].pk]), {"active": "1"})
    assert get_user_model().objects.get(username="viewer").is_active
    assert AuditEntry.objects.filter(action="user_activated").exists()


def test_the_last_admin_cannot_be_demoted_or_deactivated(client: Client, staff: dict[str, Any]) -> None:
    as_role(client, staff, "admin")
    page = client.post(reverse("web-user-role", args=[staff["admin"].pk]), {"role": "viewer"}, follow=True).content.decode()
    assert "last active admin" in page and role_of(staff["admin"]) == "admin"
    page = client.post(reverse("web-user-active", args=[staff["admin"].pk]), {"active": "0"}, follow=True).content.decode()
    assert "cannot deactivate yourself" in page
    # With a second admin, the first may step down.
    client.post(reverse("web-user-role", args=[staff["operator"].pk]), {"role": "admin"})
    client.post(reverse("web-user-role", args=[staff["admin"].pk]), {"role": "viewer"})
    assert role_of(get_user_model().objects.get(username="admin")) == "viewer"
