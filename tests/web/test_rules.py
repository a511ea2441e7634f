"""Rules from the admin app: history, preview (meaning, text, who is affected), apply."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from frontdesk.audit.models import AuditEntry
from frontdesk.customers.models import Customer
from frontdesk.ledger.models import Job
from frontdesk.rules.models import RulesVersion

from ..conftest import RULES_FILE, drain
from ..test_delivery import buy
from .conftest import as_role

pytestmark = pytest.mark.django_db
# From now on the community price also grants the course.
NEW_RULES = RULES_FILE.read_text().replace("  - price: price_community\n    grant: [community]\n",
                                           "  - price: price_community\n    grant: [community, course]\n", 1)


@pytest.fixture
def customer(client: Client, fakes: Any, rules: Any) -> Customer:
    buy(client, "rules@example.com")
    drain()
    return Customer.objects.get()


def test_preview_shows_meaning_text_and_who_changes_without_storing(client: Client, staff: dict[str, Any],
                                                                    customer: Customer) -> None:
    assert "price_community\n    grant: [community, course]" in NEW_RULES
    as_role(client, staff, "admin")
    page = client.post(reverse("web-rules-preview"), {"content": NEW_RULES}).content.decode()
    assert "~ mapping price price_community: [&#x27;community&#x27;] → [&#x27;community&#x27;, &#x27;course&#x27;]" in page
    assert '<span class="add">+    grant: [community, course]</span>' in page
    assert "Who gains or loses what: 1 customer" in page and "gains course" in page and "rules@example.com" in page
    assert RulesVersion.objects.count() == 1 and not AuditEntry.objects.filter(action="rules_loaded").exists()


def test_apply_stores_the_next_version_changes_only_affected_customers_and_audits(
        client: Client, staff: dict[str, Any], customer: Customer) -> None:
    as_role(client, staff, "admin")
    preview = client.post(reverse("web-rules-preview"),
                          {"file": SimpleUploadedFile("rules.yaml", NEW_RULES.encode())}).content.decode()
    digest = preview.split('name="digest" value="')[1].split('"')[0]
    before = Job.objects.count()
    response = client.post(reverse("web-rules-apply"), {"content": NEW_RULES, "digest": digest, "reason": "bundle"})
    assert response["Location"] == reverse("web-rules")
    version = RulesVersion.current()
    assert (version.number, version.loaded_by) == (2, "admin")
    assert set(customer.active_entitlements().values_list("name", flat=True)) == {"community", "course"}
    assert Job.objects.count() == before + 2  # circle.sync and kit.sync for the one customer
    entry = AuditEntry.objects.get(action="rules_loaded")
    assert (entry.actor, entry.target, entry.reason, entry.after["customers_changed"]) == ("admin", "rules:v2", "bundle", 1)
    page = client.get(reverse("web-rules")).content.decode()
    assert "Current: v2" in page and f'href="{reverse("web-rules-version", args=[1])}"' in page
    history = client.get(reverse("web-rules-version", args=[2])).content.decode()
    assert "Changes in meaning from v1" in history and "~ mapping price price_community" in history


def test_apply_refuses_content_that_was_not_previewed(client: Client, staff: dict[str, Any], rules: Any) -> None:
    as_role(client, staff, "admin")
    page = client.post(reverse("web-rules-apply"), {"content": NEW_RULES, "digest": "0" * 64, "reason": "x"},
                       follow=True).content.decode()
    assert "preview them again" in page and RulesVersion.objects.count() == 1


def test_apply_needs_a_reason(client: Client, staff: dict[str, Any], rules: Any) -> None:
    import hashlib

    as_role(client, staff, "admin")
    digest = hashlib.sha256(NEW_RULES.encode()).hexdigest()
    page = client.post(reverse("web-rules-apply"), {"content": NEW_RULES, "digest": digest}, follow=True).content.decode()
    assert "Say why the rules change" in page and RulesVersion.objects.count() == 1


def test_invalid_rules_show_their_line_numbers(client: Client, staff: dict[str, Any], rules: Any) -> None:
    as_role(client, staff, "admin")
    response = client.post(reverse("web-rules-preview"), {"content": "entitlements:\n  community:\n    circle: 5\n"})
    assert response.status_code == 400
    assert "The rules are not valid" in response.content.decode() and "line 3" in response.content.decode()


def test_identical_rules_change_nothing(client: Client, staff: dict[str, Any], rules: Any) -> None:
    as_role(client, staff, "admin")
    page = client.post(reverse("web-rules-preview"), {"content": RULES_FILE.read_text()}).content.decode()
    assert "identical to the current version v1" in page and "Apply as the next version" not in page


def test_operators_read_rules_but_cannot_load_them(client: Client, staff: dict[str, Any], rules: Any) -> None:
    as_role(client, staff, "operator")
    page = client.get(reverse("web-rules")).content.decode()
    assert "Current: v1" in page and "Load a new version" not in page
    assert client.post(reverse("web-rules-preview"), {"content": NEW_RULES}).status_code == 403
