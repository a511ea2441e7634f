"""A rules change is previewed, then applied only to the customers it affects."""

from __future__ import annotations

from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

from frontdesk.customers.models import Customer
from frontdesk.ledger.models import Job

from .conftest import RULES_FILE, drain
from .test_delivery import buy

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_a_rules_change_is_previewed_then_applied_to_affected_customers_only(
        client: Any, fakes: Any, rules: Any, tmp_path: Path) -> None:
    buy(client, "community@example.com")
    buy(client, "course@example.com", price="price_other")  # no mapping: grants nothing
    from . import stripe_events as se
    from .conftest import signed_post
    session = se.checkout_session("learner@example.com", line_items=[se.line_item("price_x", "prod_course")])
    signed_post(client, se.event("checkout.session.completed", session))
    drain()
    fakes.circle.add_space(104, "course v2")
    before_jobs = Job.objects.count()
    calls_before = len(fakes.circle.calls)

    new = tmp_path / "rules.yaml"
    new.write_text(RULES_FILE.read_text().replace("spaces: [103]", "spaces: [104]"))
    preview = run("rules", "preview", str(new))
    assert "~ course.circle.spaces: [103] → [104]" in preview
    assert "-      spaces: [103]" in preview and "+      spaces: [104]" in preview
    learner = Customer.objects.get(email="learner@example.com")
    assert f"customer {learner.pk} (learner@example.com): circle: +spaces [104]; -spaces [103]" in preview
    assert "community@example.com" not in preview
    assert "1 customer(s) would change" in preview
    assert Job.objects.count() == before_jobs and len(fakes.circle.calls) == calls_before  # nothing applied

    out = run("rules", "load", str(new))
    assert "applied: 1 customer(s) change" in out
    drain()
    new_jobs = Job.objects.all()[before_jobs:]
    assert {(j.kind, j.customer_id) for j in new_jobs} == {("circle.sync", learner.pk)}
    assert fakes.circle.member("learner@example.com")["space_ids"] == {104}
    assert fakes.circle.member("community@example.com")["space_ids"] == {101, 102}


def test_a_mapping_change_grants_and_revokes_on_apply(client: Any, fakes: Any, rules: Any, tmp_path: Path) -> None:
    buy(client, "other@example.com", price="price_other")
    drain()
    assert not Customer.objects.get().entitlements.exists()
    new = tmp_path / "rules.yaml"
    new.write_text(RULES_FILE.read_text().replace("  - price: price_community\n", "  - price: price_other\n"))
    preview = run("rules", "preview", str(new))
    assert "+ mapping price price_other → ['community']" in preview
    assert "- mapping price price_community → ['community']" in preview
    assert "(other@example.com): gains community" in preview
    run("rules", "load", str(new))
    drain()
    assert fakes.circle.member("other@example.com")["space_ids"] == {101, 102}
    assert Customer.objects.get().entitlement_changes.get().cause == "rules:v2"
