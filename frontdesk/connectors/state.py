"""The applied state a sync keeps per customer and provider (ProviderAccount.applied)."""

from __future__ import annotations

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


def save_pending(account: ProviderAccount, kind: str, values: set[int]) -> None:
    """Persist before a write is sent, so a retry after a lost answer knows what to undo."""
    account.applied[f"pending_{kind}"] = sorted(values)
    account.save(update_fields=["applied", "external_id", "email"])
