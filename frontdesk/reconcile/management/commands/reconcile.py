"""``frontdesk reconcile [--customer ID|EMAIL]… [--provider circle|kit] [--dry-run]``"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from frontdesk.customers.access import normalise_email
from frontdesk.customers.models import Customer
from frontdesk.logs import email_hash
from frontdesk.reconcile.config import PROVIDERS
from frontdesk.reconcile.engine import reconcile
from frontdesk.reconcile.models import Drift, ReconcileRun


class Command(BaseCommand):
    help = "Compare what Circle and Kit hold with what customers should have; record and repair drift."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--customer", action="append", default=[], metavar="ID|EMAIL",
                            help="only this customer (repeatable); looks them up one by one instead of paging lists")
        parser.add_argument("--provider", choices=PROVIDERS, help="only this provider (default: both)")
        parser.add_argument("--dry-run", action="store_true", help="record what differs, change nothing")
        parser.add_argument("--emails", action="store_true", help="print e-mails, not only their hashes")
        parser.add_argument("--max-lines", type=int, default=500, help="drift lines to print (default 500)")

    def handle(self, *args: Any, customer: list[str], provider: str | None, dry_run: bool,
               emails: bool, max_lines: int, **options: Any) -> None:
        ids = self.customer_ids(customer) if customer else None
        run = reconcile(provider=provider, customer_ids=ids, dry_run=dry_run)
        self.summary(run)
        self.drift_lines(run, emails, max_lines)
        if run.status == ReconcileRun.FAILED:
            raise CommandError(f"reconcile run {run.pk} failed: {run.error}")

    def customer_ids(self, values: list[str]) -> list[int]:
        ids: set[int] = set()
        for value in values:
            found = (Customer.objects.filter(pk=int(value)) if value.isdigit()
                     else Customer.objects.filter(email=normalise_email(value)))
            matched = list(found.values_list("pk", flat=True))
            if not matched:
                raise CommandError(f"no customer {value!r}")
            ids.update(matched)
        return sorted(ids)

    def summary(self, run: ReconcileRun) -> None:
        mode = " (dry run: nothing changed)" if run.dry_run else ""
        self.stdout.write(f"reconcile run {run.pk} {run.status}{mode}; {run.requests} request(s)")
        for provider, c in run.counts.items():
            drift = ", ".join(f"{k} {n}" for k, n in sorted(c.get("drift", {}).items())) or "no drift"
            limit = c.get("month_limit")
            month = f"{c.get('month_requests', 0)}/{limit}" if limit else str(c.get("month_requests", 0))
            self.stdout.write(
                f"  {provider}: {c['status']}, policy {c['policy']}, {c['mode']} mode; "
                f"{c['checked']} of {c['customers']} customer(s) checked, {c['skipped_in_flight']} skipped (sync in flight); "
                f"{drift}; {c['repaired']} repaired, {c['syncs_requested']} sync(s) queued, "
                f"{c['applied_corrected']} applied state(s) corrected; {c['requests']} request(s), {month} this month")
            if c.get("missing_targets"):
                self.stdout.write(f"    not in {provider} (left out; see `frontdesk doctor`): {', '.join(c['missing_targets'])}")
            if c.get("error"):
                self.stdout.write(f"    {c['error']}")

    def drift_lines(self, run: ReconcileRun, emails: bool, max_lines: int) -> None:
        drifts = Drift.objects.filter(run=run).select_related("customer").order_by("pk")
        total = drifts.count()
        for drift in drifts[:max_lines].iterator(chunk_size=500):
            who = f"customer {drift.customer_id} {email_hash(drift.customer.email)}"
            if emails:
                who += f" <{drift.customer.email}>"
            state = "repaired" if drift.repaired else "reported"
            self.stdout.write(f"  {drift.provider} {who}: {drift.kind} {drift.target_kind} {drift.target_id}"
                              f" ({drift.detail}) {state}")
        if total > max_lines:
            self.stdout.write(f"  … and {total - max_lines} more (table reconcile_drift, run {run.pk})")
