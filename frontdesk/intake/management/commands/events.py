from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from frontdesk.intake.models import Event
from frontdesk.intake.processing import HANDLED_TYPES
from frontdesk.ledger.enqueue import enqueue
from frontdesk.ledger.models import Job


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
        if not event.payload:
            raise CommandError(f"the payload of {event.event_id} was pruned (FRONTDESK_RETAIN_PAYLOADS_DAYS); it cannot be replayed")
        if event.type not in HANDLED_TYPES:
            raise CommandError(f"{event.type} events are not processed; nothing to replay")
        with transaction.atomic():
            n = Job.objects.filter(idempotency_key__startswith=f"stripe:event:{event.event_id}").count()
            job = enqueue("stripe.process_event", "stripe", idempotency_key=f"stripe:event:{event.event_id}:replay:{n}",
                          correlation_id=event.correlation_id, event_id=event.pk)
            Event.objects.filter(pk=event.pk).update(status=Event.RECEIVED)
        self.stdout.write(f"queued job {job.pk if job else '?'} to replay {event.event_id}")
