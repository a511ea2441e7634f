from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from frontdesk.connectors.http import ProviderError
from frontdesk.intake.backfill import run


class Command(BaseCommand):
    help = "Import Stripe customers, subscriptions and missed events (resumable)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("provider", choices=["stripe"])
        parser.add_argument("--since", default=None, help="only events (and customers) created since this date")
        parser.add_argument("--restart", action="store_true", help="start over instead of resuming")

    def handle(self, *args: Any, since: str | None, restart: bool, **options: Any) -> None:
        when = None
        if since:
            try:
                when = datetime.fromisoformat(since)
            except ValueError:
                raise CommandError(f"--since {since!r} is not a date like 2026-11-01") from None
            when = when if when.tzinfo else when.replace(tzinfo=UTC)
        try:
            counts = run(when, restart=restart, out=self.stdout.write)
        except ProviderError as exc:
            raise CommandError(f"Stripe answered {exc.reason}: {exc.message}. Run the command again to resume.") from None
        self.stdout.write("backfill finished: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
