from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from frontdesk.ledger.worker import Worker


class Command(BaseCommand):
    help = "Claim and run due jobs until SIGTERM."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--concurrency", type=int, default=4, help="jobs run at once (threads)")
        parser.add_argument("--worker-id", default=None, help="name shown in leases and heartbeats")
        parser.add_argument("--metrics-bind", default=None, metavar="HOST:PORT",
                            help="serve Prometheus metrics here (for hosts that run no web process)")

    def handle(self, *args: Any, concurrency: int, worker_id: str | None, metrics_bind: str | None,
               **options: Any) -> None:
        if concurrency < 1:
            raise SystemExit("--concurrency must be at least 1")
        if metrics_bind:
            from prometheus_client import start_http_server

            from frontdesk.ops.metrics import registry

            host, _, port = metrics_bind.rpartition(":")
            start_http_server(int(port), addr=host or "127.0.0.1", registry=registry())
        worker = Worker(concurrency=concurrency, worker_id=worker_id)
        worker.install_signal_handlers()
        worker.run()
