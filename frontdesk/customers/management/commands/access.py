from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from frontdesk.customers import overrides
from frontdesk.customers.explain import find
from frontdesk.customers.models import Override


def _when(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise CommandError(f"--expires {value!r} is not a date like 2026-12-31 or 2026-12-31T18:00") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class Command(BaseCommand):
    help = "Grant or revoke access by hand (an override), or remove an override."

    def add_arguments(self, parser: Any) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        for verb in ("grant", "revoke"):
            p = sub.add_parser(verb)
            p.add_argument("who", help="e-mail, cus_… or customer number")
            p.add_argument("entitlement")
            p.add_argument("--reason", required=True)
            p.add_argument("--expires", default=None, help="UTC date or time; omit for no expiry")
            p.add_argument("--by", default="cli", help="who is doing this (for the audit log)")
        rm = sub.add_parser("remove")
        rm.add_argument("override_id", type=int)
        rm.add_argument("--reason", required=True)
        rm.add_argument("--by", default="cli")

    def handle(self, *args: Any, action: str, **o: Any) -> None:
        try:
            if action == "remove":
                override = Override.objects.filter(pk=o["override_id"]).first()
                if override is None:
                    raise CommandError(f"no override #{o['override_id']}")
                overrides.remove(override, o["by"], o["reason"])
                self.stdout.write(f"removed override #{override.pk}")
                return
            customer = find(o["who"])
            if customer is None:
                raise CommandError(f"no customer matches {o['who']!r}")
            made = overrides.create(customer, o["entitlement"], action, o["reason"], o["by"], _when(o["expires"]))
        except overrides.OverrideError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"override #{made.pk}: {action} {made.name} for customer {customer.pk}")
