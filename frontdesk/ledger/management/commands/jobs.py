from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from frontdesk.ledger.models import Job, JobState
from frontdesk.ops.actions import ActionError, retry_job, retry_jobs


def job_dict(job: Job) -> dict[str, Any]:
    return {
        "id": job.pk, "kind": job.kind, "provider": job.provider, "state": job.state,
        "customer_id": job.customer_id, "attempts": job.attempts,
        "run_at": job.run_at.isoformat(), "reason_code": job.reason_code,
        "last_error": job.last_error, "correlation_id": job.correlation_id,
    }


class Command(BaseCommand):
    help = "List jobs, or retry jobs that need review."

    def add_arguments(self, parser: Any) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        ls = sub.add_parser("list", help="list jobs, newest first")
        ls.add_argument("--state", choices=JobState.values)
        ls.add_argument("--provider")
        ls.add_argument("--limit", type=int, default=50)
        ls.add_argument("--json", action="store_true", help="one JSON array")
        retry = sub.add_parser("retry", help="queue jobs to run again now")
        retry.add_argument("ids", nargs="*", type=int)
        retry.add_argument("--state", choices=[JobState.NEEDS_REVIEW, JobState.RETRYING, JobState.CANCELLED])

    def handle(self, *args: Any, action: str, **options: Any) -> None:
        if action == "list":
            self.list(**options)
        else:
            self.retry(options["ids"], options["state"])

    def list(self, state: str | None, provider: str | None, limit: int, json: bool, **_: Any) -> None:
        jobs = Job.objects.order_by("-pk")
        if state:
            jobs = jobs.filter(state=state)
        if provider:
            jobs = jobs.filter(provider=provider)
        rows = [job_dict(j) for j in jobs[:limit]]
        if json:
            self.stdout.write(_json(rows))
            return
        if not rows:
            self.stdout.write("no jobs")
            return
        self.stdout.write(f"{'ID':>6}  {'KIND':<22} {'STATE':<13} {'TRY':>3}  {'CUST':>6}  REASON")
        for r in rows:
            self.stdout.write(f"{r['id']:>6}  {r['kind']:<22} {r['state']:<13} {r['attempts']:>3}  "
                              f"{r['customer_id'] or '-':>6}  {r['reason_code']}")

    def retry(self, ids: list[int], state: str | None) -> None:
        if bool(ids) == bool(state):
            raise CommandError("give job ids or --state, not both and not neither")
        if state:
            count = retry_jobs(Job.objects.filter(state=state), "cli")
            self.stdout.write(f"queued {count} job(s) to run again")
            return
        jobs = {j.pk: j for j in Job.objects.filter(pk__in=ids)}
        missing = sorted(set(ids) - set(jobs))
        if missing:
            raise CommandError(f"no job with id {', '.join(map(str, missing))}")
        try:
            for job in jobs.values():
                retry_job(job, "cli")
        except ActionError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"queued {len(jobs)} job(s) to run again")


def _json(rows: list[dict[str, Any]]) -> str:
    return json.dumps(rows, indent=2)
