from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from django.core.management.base import BaseCommand

from frontdesk.ops.doctor import ERROR, run_checks

MARK = {"ok": "ok   ", "warning": "WARN ", "error": "ERROR"}


class Command(BaseCommand):
    help = "Check settings, provider credentials, rule targets, the clock, migrations and workers."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--json", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        findings = run_checks()
        if options["json"]:
            self.stdout.write(json.dumps([asdict(f) for f in findings], indent=2))
        else:
            for f in findings:
                self.stdout.write(f"{MARK[f.level]} [{f.check}] {f.message}")
                if f.fix and f.level != "ok":
                    self.stdout.write(f"        fix: {f.fix}")
        errors = sum(f.level == ERROR for f in findings)
        if errors:
            self.stderr.write(f"{errors} problem(s) found")
            raise SystemExit(1)
        self.stdout.write("no problems found")
