"""The applied state a sync keeps per customer and provider (ProviderAccount.applied)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from django.utils import timezone

from frontdesk.customers.models import Customer, ProviderAccount


def account_for(customer: Customer, provider: str) -> ProviderAccount:
    return ProviderAccount.objects.get_or_create(customer=customer, provider=provider)[0]


def applied_set(account: ProviderAccount, kind: str) -> set[int]:
    return set(account.applied.get(kind, []))


def save_applied(account: ProviderAccount, kind: str, values: set[int] | dict[str, Any]) -> None:
    """Persist after every successful write, so a retry after a crash resends nothing that
    already succeeded."""
    account.applied[kind] = sorted(values) if isinstance(values, set) else values
    account.synced_at = timezone.now()
    account.save(update_fields=["applied", "synced_at", "external_id", "email"])


def pending_set(account: ProviderAccount, kind: str) -> set[int]:
    """Targets a write was sent for whose answer never came: maybe applied, maybe not."""
    return set(account.applied.get(f"pending_{kind}", []))


def converge(account: ProviderAccount, desired: dict[str, set[int]],
             add: Callable[[str, int], None], remove: Callable[[str, int], None] | None) -> None:
    """Add each desired target not applied yet and, with ``remove``, remove each applied or
    pending one no longer desired, kind by kind in the order of ``desired``.

    Every planned add is recorded as pending in one write before the first call, and the
    outcome in one write after the last call or the first failure. A lost answer or a crash
    in between leaves the target pending, which counts as maybe applied: a later run removes
    it if it is no longer desired (a removal of something absent counts as done) and adds it
    again otherwise (adds are safe to repeat). That is as safe as a write before and after
    each call, at two writes per run instead of two per call."""
    plan = {kind: (sorted(want - applied_set(account, kind)),
                   sorted((applied_set(account, kind) | pending_set(account, kind)) - want) if remove else [])
            for kind, want in desired.items()}
    if not any(adds or removes for adds, removes in plan.values()):
        return
    for kind, (adds, _removes) in plan.items():
        if adds and remove is not None:
            account.applied[f"pending_{kind}"] = sorted(pending_set(account, kind) | set(adds))
    if any(adds for adds, _removes in plan.values()) and remove is not None:
        account.save(update_fields=["applied", "external_id", "email"])  # before the calls
    try:
        for kind, (adds, removes) in plan.items():
            _apply(account, kind, adds, add, done=True)
            if remove is not None:
                _apply(account, kind, removes, remove, done=False)
    finally:
        account.synced_at = timezone.now()
        account.save(update_fields=["applied", "synced_at", "external_id", "email"])


def _apply(account: ProviderAccount, kind: str, targets: Iterable[int], call: Callable[[str, int], None],
           done: bool) -> None:
    """Call ``call`` per target, noting each success in memory (saved by :func:`converge`)."""
    applied, pending = applied_set(account, kind), pending_set(account, kind)
    for target in targets:
        call(kind, target)
        (applied.add if done else applied.discard)(target)
        pending.discard(target)
        account.applied[kind] = sorted(applied)
        if f"pending_{kind}" in account.applied or pending:
            account.applied[f"pending_{kind}"] = sorted(pending)
