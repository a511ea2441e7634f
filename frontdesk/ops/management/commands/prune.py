from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from frontdesk.ops.retention import prune


class Command(BaseCommand):
    help = "Delete data past its retention period now (workers also do this hourly)."

    def handle(self, *args: Any, **options: Any) -> None:
        total: dict[str, int] = {}
        while True:  # until a pass finds nothing more
            counts = prune(max_batches=100)
            for k, v in counts.items():
                total[k] = total.get(k, 0) + v
            if not any(counts.values()):
                break
        self.stdout.write(", ".join(f"{k}: {v}" for k, v in total.items()))
