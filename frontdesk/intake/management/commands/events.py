from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError
from frontdesk.intake.models import Event
from frontdesk.ops.actions import ActionError, replay_event


class Command(BaseCommand):
    help = "Inspect stored events, or replay one through processing (effects stay idempotent)."

    def add_arguments(self, parser: Any) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        replay = sub.add_parser("replay", help="run an event's processing again")
        replay.add_argument("event_id", help="the provider's event id (evt_…)")
        ls = sub.add_parser("list", help="newest events")
        ls.add_argument("--limit", type=int, default=20)

    def handle(self, *args: Any, action: str, **options: Any) -> None:
        if action == "list":
            for e in Event.objects.order_by("-pk")[: options["limit"]]:
                self.stdout.write(f"{e.event_id}  {e.type:<40} {e.status:<9} {e.status_reason}")
            return
        event = Event.objects.filter(event_id=options["event_id"]).first()
        if event is None:
            raise CommandError(f"no stored event {options['event_id']!r}")
        try:
            job = replay_event(event, "cli")
        except ActionError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"queued job {job.pk} to replay {event.event_id}")
