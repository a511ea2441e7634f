"""What a new rules version would change, before it is applied; and applying it to only the
customers it changes."""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db.models import Q
from django.utils import timezone

from frontdesk.customers.derive import derive
from frontdesk.customers.models import Customer, Entitlement
from frontdesk.customers.recompute import _with_overrides, recompute
from frontdesk.ledger.enqueue import request_sync
from frontdesk.rules.models import RulesVersion
from frontdesk.rules.schema import desired_targets

EMPTY: dict[str, Any] = {"entitlements": {}, "mappings": [], "policy": {}}


@dataclass
class Effect:
    customer: Customer
    gains: set[str] = field(default_factory=set)
    loses: set[str] = field(default_factory=set)
    targets: dict[str, dict[str, list[Any]]] = field(default_factory=dict)  # provider → {"+kind": ids, "-kind": ids}

    def describe(self) -> str:
        parts = []
        if self.gains:
            parts.append("gains " + ", ".join(sorted(self.gains)))
        if self.loses:
            parts.append("loses " + ", ".join(sorted(self.loses)))
        for provider, change in sorted(self.targets.items()):
            parts.append(f"{provider}: " + "; ".join(f"{k} {v}" for k, v in sorted(change.items())))
        return f"customer {self.customer.pk} ({self.customer.email or '-'}): " + " · ".join(parts)


def _holds(customer: Customer, rules: dict[str, Any], now: datetime) -> set[str]:
    return {d.name for d in _with_overrides(customer, derive(customer, rules, now), now) if d.status == Entitlement.ACTIVE}


def _target_diff(old: dict[str, Any], new: dict[str, Any]) -> dict[str, dict[str, list[Any]]]:
    out: dict[str, dict[str, list[Any]]] = {}
    for provider in new:
        change: dict[str, list[Any]] = {}
        for kind, ids in new[provider].items():
            if kind == "fields":
                if ids != old[provider]["fields"]:
                    change["fields"] = [f"{k}={v}" for k, v in sorted(ids.items())]
                continue
            added, removed = sorted(set(ids) - set(old[provider][kind])), sorted(set(old[provider][kind]) - set(ids))
            if added:
                change[f"+{kind}"] = added
            if removed:
                change[f"-{kind}"] = removed
        if change:
            out[provider] = change
    return out


def effects(old: dict[str, Any] | None, new: dict[str, Any], now: datetime | None = None) -> Iterator[Effect]:
    """Customers whose access or provider targets differ between two rule sets, one at a time
    (the customer table is streamed, never loaded whole)."""
    now = now or timezone.now()
    old = old or EMPTY
    candidates = Customer.objects.filter(
        Q(stripe_objects__isnull=False) | Q(overrides__isnull=False) | Q(entitlements__isnull=False)).distinct()
    for customer in candidates.order_by("pk").iterator(chunk_size=500):
        before, after = _holds(customer, old, now), _holds(customer, new, now)
        targets = _target_diff(desired_targets(old, before), desired_targets(new, after))
        if before != after or targets:
            yield Effect(customer, after - before, before - after, targets)


def semantic_diff(old: dict[str, Any] | None, new: dict[str, Any]) -> list[str]:
    old = old or EMPTY
    lines = []
    for name in sorted(set(old["entitlements"]) | set(new["entitlements"])):
        a, b = old["entitlements"].get(name), new["entitlements"].get(name)
        if a is None:
            lines.append(f"+ entitlement {name}")
        elif b is None:
            lines.append(f"- entitlement {name}")
        elif a != b:
            for provider in ("circle", "kit"):
                for kind in b[provider]:
                    if a[provider].get(kind) != b[provider][kind]:
                        lines.append(f"~ {name}.{provider}.{kind}: {a[provider].get(kind)} → {b[provider][kind]}")
    key = lambda m: (m["match"], m["value"])  # noqa: E731
    olds, news = {key(m): m for m in old["mappings"]}, {key(m): m for m in new["mappings"]}
    for k in sorted(set(olds) | set(news)):
        if k not in olds:
            lines.append(f"+ mapping {k[0]} {k[1]} → {news[k]['grant']}")
        elif k not in news:
            lines.append(f"- mapping {k[0]} {k[1]} → {olds[k]['grant']}")
        elif olds[k] != news[k]:
            lines.append(f"~ mapping {k[0]} {k[1]}: {olds[k]['grant']} → {news[k]['grant']}"
                         f"{' (duration ' + str(news[k].get('duration_days')) + ' days)' if news[k].get('duration_days') else ''}")
    if old.get("policy") != new.get("policy"):
        lines.append(f"~ policy: {old.get('policy')} → {new.get('policy')}")
    return lines


def text_diff(old: str, new: str, old_name: str, new_name: str) -> list[str]:
    return list(difflib.unified_diff(old.splitlines(), new.splitlines(), old_name, new_name, lineterm=""))


def apply(version: RulesVersion, previous: RulesVersion | None) -> list[Effect]:
    """Converge only the customers the new version changes."""
    changed = []
    for effect in effects(previous.parsed if previous else None, version.parsed):
        cause = f"rules:v{version.number}"
        recompute(effect.customer.pk, cause, correlation_id=f"rulesv{version.number}", rules=version)
        for provider in effect.targets:  # definitions changed even where entitlements did not
            if effect.customer.email:
                request_sync(provider, effect.customer.pk, correlation_id=f"rulesv{version.number}", cause=cause)
        changed.append(effect)
    return changed
