"""Pure comparison: what a provider holds for one customer against what they should have.

Only targets the rules name are frontdesk's business (``Scope``): a space, tag or field the
rules never mention is someone else's, so it is neither drift nor touched by a repair.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from frontdesk.reconcile.models import Drift
from frontdesk.rules.schema import CIRCLE_TARGETS

CIRCLE_KINDS: tuple[str, ...] = tuple(CIRCLE_TARGETS)
# Kit states in which the person is no longer reachable; frontdesk cannot (and should not)
# undo an unsubscribe: the upsert "does not support" changing `state` (kit.md §5.2–5.3).
KIT_GONE_STATES = ("cancelled", "bounced", "complained")


@dataclass
class Scope:
    """The targets the current rules name, minus any the provider could not list."""

    targets: dict[str, set[int]] = field(default_factory=dict)  # Circle kinds, or Kit "tags"
    fields: set[str] = field(default_factory=set)  # Kit custom-field keys

    @classmethod
    def from_rules(cls, parsed: dict[str, Any], provider: str) -> Scope:
        specs = [spec[provider] for spec in parsed.get("entitlements", {}).values()]
        if provider == "circle":
            return cls({k: {int(t) for s in specs for t in s.get(k, [])} for k in CIRCLE_KINDS})
        return cls({"tags": {int(t) for s in specs for t in s.get("tags", [])}},
                   {str(key) for s in specs for key in s.get("fields", {})})

    def empty(self) -> bool:
        return not any(self.targets.values()) and not self.fields


@dataclass
class Found:
    """What the provider holds for one customer. ``exists`` False: no member / subscriber."""

    exists: bool
    external_id: str = ""
    memberships: dict[str, set[int]] = field(default_factory=dict)
    fields: dict[str, str] = field(default_factory=dict)
    state: str = "active"


@dataclass
class Finding:
    kind: str
    target_kind: str
    target_id: str
    detail: str = ""
    repairable: bool = True


@dataclass
class Verdict:
    findings: list[Finding]
    applied: dict[str, Any]  # what ProviderAccount.applied should say, given what is there
    external_id: str  # what ProviderAccount.external_id should say


def normalised(applied: dict[str, Any]) -> dict[str, Any]:
    """For comparing applied states: missing keys and empty values are the same thing."""
    return {k: (sorted(v) if isinstance(v, list) else v) for k, v in applied.items() if v}


def circle_verdict(desired: dict[str, list[int]], applied: dict[str, Any], external_id: str,
                   found: Found, scope: Scope) -> Verdict:
    if external_id and not found.exists:
        # The member frontdesk linked is gone (deactivated, deleted or banned by hand). Clear
        # the link so the sync searches again and re-creates them with everything desired.
        cleared = {**applied, **{k: [] for k in CIRCLE_KINDS}}
        return Verdict([Finding(Drift.MEMBER_REMOVED, "member", external_id, "not in Circle any more")], cleared, "")
    findings: list[Finding] = []
    new_applied = dict(applied)
    for kind in CIRCLE_KINDS:
        named = scope.targets.get(kind, set())
        want = set(desired.get(kind, [])) & named
        have = found.memberships.get(kind, set()) & named if found.exists else set()
        lacking = Drift.WRONG_TAGS if kind == "member_tags" else Drift.MISSING_ACCESS
        extra = Drift.WRONG_TAGS if kind == "member_tags" else Drift.UNEXPECTED_ACCESS
        findings += [Finding(lacking, kind, str(t), "missing") for t in sorted(want - have)]
        findings += [Finding(extra, kind, str(t), "unexpected") for t in sorted(have - want)]
        # Applied entries for targets the rules no longer name stay: removing them is the sync's job.
        new_applied[kind] = sorted((set(applied.get(kind, [])) - named) | have)
    link = found.external_id if found.exists and found.external_id else external_id
    return Verdict(findings, new_applied, link)


def kit_verdict(desired: dict[str, Any], applied: dict[str, Any], external_id: str,
                found: Found, scope: Scope) -> Verdict:
    if external_id and not found.exists:
        # Deleted in Kit: nothing of ours is left there, sequences included. Clear the link so
        # the sync upserts the subscriber again and re-applies everything.
        cleared = {**applied, "tags": [], "sequences": [], "fields": {}}
        return Verdict([Finding(Drift.MEMBER_REMOVED, "subscriber", external_id, "not in Kit any more")], cleared, "")
    if found.exists and found.state in KIT_GONE_STATES:
        wanted = bool(desired.get("tags") or desired.get("sequences") or desired.get("fields"))
        gone = [Finding(Drift.MEMBER_REMOVED, "subscriber", found.external_id or external_id,
                        f"state={found.state}", repairable=False)] if wanted else []
        return Verdict(gone, applied, external_id)
    findings: list[Finding] = []
    new_applied = dict(applied)
    named = scope.targets.get("tags", set())
    want = set(desired.get("tags", [])) & named
    have = found.memberships.get("tags", set()) & named if found.exists else set()
    findings += [Finding(Drift.WRONG_TAGS, "tags", str(t), "missing") for t in sorted(want - have)]
    findings += [Finding(Drift.WRONG_TAGS, "tags", str(t), "unexpected") for t in sorted(have - want)]
    new_applied["tags"] = sorted((set(applied.get("tags", [])) - named) | have)
    wanted_fields: dict[str, Any] = desired.get("fields", {})
    actual = found.fields if found.exists else {}
    kept = {k: v for k, v in (applied.get("fields") or {}).items() if k not in scope.fields}
    for key in sorted(scope.fields):
        # The sync blanks a field it no longer wants, so "" is the expected value then.
        expected, value = str(wanted_fields.get(key) or ""), str(actual.get(key) or "")
        if expected != value:
            findings.append(Finding(Drift.WRONG_FIELDS, "fields", key,
                                    f"expected {expected[:60]!r}, found {value[:60]!r}"))
        if value:
            kept[key] = value
    new_applied["fields"] = kept
    link = found.external_id if found.exists and found.external_id else external_id
    return Verdict(findings, new_applied, link)
