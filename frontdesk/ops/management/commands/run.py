from __future__ import annotations

import os
import shutil
import signal
import subprocess  # nosec B404  # starts gunicorn and a worker from this interpreter, no shell
import sys
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from frontdesk.rules.loading import load_file
from frontdesk.rules.models import RulesVersion
from frontdesk.rules.schema import RulesError


class Command(BaseCommand):
    help = "Run the web server and a worker together (and, with no provider keys, the sandbox)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--bind", default=os.environ.get("FRONTDESK_BIND", "127.0.0.1:8000"))
        parser.add_argument("--web-workers", type=int, default=2)
        parser.add_argument("--concurrency", type=int, default=4, help="worker threads")

    def handle(self, *args: Any, bind: str, web_workers: int, concurrency: int, **_: Any) -> None:
        call_command("migrate", verbosity=0, interactive=False)
        rules_path = settings.FRONTDESK_RULES or ("rules.example.yaml" if settings.SANDBOX else "")
        if rules_path:
            try:
                version, created = load_file(rules_path, loaded_by="run")
            except (OSError, RulesError) as exc:
                raise CommandError(f"cannot load rules from {rules_path}: {exc}") from None
            self.stdout.write(f"rules v{version.number} from {rules_path}{' (new)' if created else ''}")
        elif RulesVersion.current() is None:
            self.stderr.write("warning: no rules loaded; set FRONTDESK_RULES or run `frontdesk rules load FILE`")
        fakes = None
        if settings.SANDBOX:
            from frontdesk.ops import sandbox

            fakes = sandbox.start()
            current = RulesVersion.current()
            if current:
                sandbox.seed(fakes, current.parsed)
            self.stdout.write("SANDBOX: no provider credentials are set, so frontdesk talks to local fakes:")
            for name, fake in fakes.items():
                self.stdout.write(f"  fake {name:<6} {fake.url}   (calls: {fake.url}/_fake/calls)")
            self.stdout.write(f"  webhook secret: {settings.SANDBOX_WEBHOOK_SECRET}")
            self.stdout.write("  try: frontdesk send-test-event --email you@example.com --price price_community_monthly")
        # One metrics folder for the web processes and the worker, so /metrics sums them all.
        metrics_dir = Path(settings.VAR_DIR) / "prometheus"
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir(parents=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
        web = [sys.executable, "-m", "gunicorn", "frontdesk.wsgi", "--bind", bind, "--workers", str(web_workers),
               "--access-logfile", "-", "--graceful-timeout", "20"]
        worker = [sys.executable, "-m", "frontdesk.cli", "worker", "--concurrency", str(concurrency)]
        children = [subprocess.Popen(web), subprocess.Popen(worker)]  # nosec B603  # argv lists built here, no shell
        self.stdout.write(f"frontdesk is serving on http://{bind}  (webhook: /webhooks/stripe)")

        stopping = False

        def stop(signum: int, _frame: object) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        while not stopping and all(c.poll() is None for c in children):
            time.sleep(0.5)
        for c in children:
            if c.poll() is None:
                c.send_signal(signal.SIGTERM)
        for c in children:
            try:
                c.wait(timeout=30)
            except subprocess.TimeoutExpired:
                c.kill()
        if fakes:
            for fake in fakes.values():
                fake.stop()
        if not stopping:
            raise CommandError("a child process exited; frontdesk stopped")
