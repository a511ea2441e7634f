from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from frontdesk.customers.explain import explain, find


class Command(BaseCommand):
    help = "Why does this person (not) have access? Events, rules, overrides and jobs behind it."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("who", help="an e-mail, a Stripe customer id (cus_…) or a customer number")

    def handle(self, *args: Any, who: str, **options: Any) -> None:
        customer = find(who)
        if customer is None:
            raise CommandError(f"no customer matches {who!r}")
        self.stdout.write("\n".join(explain(customer)))
