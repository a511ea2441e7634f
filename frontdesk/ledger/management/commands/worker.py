from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from frontdesk.ledger.worker import Worker


class Command(BaseCommand):
    help = "Claim and run due jobs until SIGTERM."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--concurrency", type=int, default=4, help="jobs run at once (threads)")
        parser.add_argument("--worker-id", default=None, help="name shown in leases and heartbeats")

    def handle(self, *args: Any, concurrency: int, worker_id: str | None, **options: Any) -> None:
        if concurrency < 1:
            raise SystemExit("--concurrency must be at least 1")
        worker = Worker(concurrency=concurrency, worker_id=worker_id)
        worker.install_signal_handlers()
        worker.run()
