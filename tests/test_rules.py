from __future__ import annotations

from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from frontdesk.rules.loading import load_text
from frontdesk.rules.models import RulesVersion
from frontdesk.rules.schema import RulesError, desired_targets, entitlements_for, parse

EXAMPLE = Path(__file__).resolve().parents[1] / "rules.example.yaml"
GOOD = (Path(__file__).parent / "rules.yaml").read_text()


def test_it_parses_the_example_rules_file() -> None:
    rules = parse(EXAMPLE.read_text(), "rules.example.yaml")
    assert set(rules["entitlements"]) == {"community", "course"}
    assert entitlements_for(rules, "price_bundle", None, None) == {"community", "course"}
    assert entitlements_for(rules, None, "prod_course", None) == {"course"}
    assert entitlements_for(rules, "price_x", "prod_x", "community_annual") == {"community"}
    assert entitlements_for(rules, "price_unknown", "prod_unknown", None) == set()


def test_it_unions_targets_of_several_entitlements() -> None:
    rules = parse(GOOD)
    targets = desired_targets(rules, {"community", "course"})
    assert targets["circle"]["spaces"] == [101, 102, 103]
    assert targets["kit"]["tags"] == [501, 502, 503]
    assert targets["kit"]["fields"] == {"plan": "community"}
    assert desired_targets(rules, set())["circle"]["spaces"] == []


@pytest.mark.parametrize(("content", "line", "fragment"), [
    ("entitlements: {}\nmappings:\n  - price: p1\n    grant: [nope]\n", 4, "'nope' is not an entitlement"),
    ("entitlements:\n  a:\n    circle:\n      spaces: [abc]\n", 4, "not a positive numeric id"),
    ("entitlements:\n  a:\n    circle:\n      rooms: [1]\n", 4, "unknown key 'rooms'"),
    ("entitlements:\n  a: {}\nmappings:\n  - grant: [a]\n", 4, "exactly one of: price, product, lookup_key"),
    ("entitlements:\n  a: {}\nmappings:\n  - price: p\n    grant: [a]\n  - price: p\n    grant: [a]\n", 6, "already mapped on line 4"),
    ("entitlements:\n  a: {\n", 3, "not valid YAML"),
    ("", 1, "the file is empty"),
    ("entitlements:\n  Bad Name: {}\n", 2, "must be lower-case"),
    ("entitlements:\n  a:\n    kit:\n      fields:\n        Plan Name: x\n", 5, "not a Kit field key"),
])
def test_it_reports_file_line_and_problem(content: str, line: int, fragment: str) -> None:
    with pytest.raises(RulesError) as err:
        parse(content, "bad.yaml")
    text = str(err.value)
    assert f"bad.yaml:{line}:" in text, text
    assert fragment in text


@pytest.mark.django_db
def test_it_stores_numbered_immutable_versions_and_skips_identical_content() -> None:
    v1, created1 = load_text(GOOD, "a.yaml")
    again, created_again = load_text(GOOD, "a.yaml")
    v2, created2 = load_text(GOOD + "\n# changed\n", "a.yaml")
    assert (v1.number, created1) == (1, True)
    assert (again.pk, created_again) == (v1.pk, False)
    assert (v2.number, created2) == (2, True)
    assert RulesVersion.current() == v2
    assert len(v1.content_hash) == 64
    with pytest.raises(ValueError, match="immutable"):
        v1.save()


@pytest.mark.django_db
def test_the_rules_command_loads_shows_and_explains_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    call_command("rules", "load", str(EXAMPLE))
    assert "as rules v1" in capsys.readouterr().out
    call_command("rules", "load", str(EXAMPLE))
    assert "unchanged" in capsys.readouterr().out
    call_command("rules", "show")
    assert "price_community_monthly" in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text("entitlements:\n  a:\n    circle:\n      spaces: [x]\n")
    with pytest.raises(CommandError, match=r"bad.yaml:4: .*not a positive numeric id"):
        call_command("rules", "load", str(bad))
    with pytest.raises(CommandError, match="no such file"):
        call_command("rules", "load", str(tmp_path / "missing.yaml"))
    assert RulesVersion.objects.count() == 1
