"""One reconciliation run: per provider, read what is there, compare every customer in
scope with what they should have, record the drift and (policy ``repair``) hand it to the
normal sync jobs. Customers are streamed in chunks, never all loaded at once."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from frontdesk.connectors.http import ProviderError
from frontdesk.customers.access import desired_state
from frontdesk.customers.models import Customer, Entitlement, ProviderAccount
from frontdesk.ledger.enqueue import SYNC_KINDS, request_sync
from frontdesk.ledger.models import Job, JobState
from frontdesk.ledger.providers import blocked_providers
from frontdesk.logs import bound, email_hash, get_logger
from frontdesk.reconcile import config
from frontdesk.reconcile.caller import Caller
from frontdesk.reconcile.circle import CircleReader
from frontdesk.reconcile.compare import Scope, Verdict, circle_verdict, kit_verdict, normalised
from frontdesk.reconcile.kit import KitReader
from frontdesk.reconcile.models import Drift, ReconcileRun
from frontdesk.reconcile.usage import Budget, QuotaReserveReached, used
from frontdesk.rules.models import RulesVersion

log = get_logger(__name__)
CHUNK = 500  # customers per database round trip, and the most held in memory at once
STALE_AFTER = timedelta(minutes=15)  # a running run without a heartbeat this long is dead
HEARTBEAT_SECONDS = 30.0
Reader = CircleReader | KitReader
READERS: dict[str, type[CircleReader] | type[KitReader]] = {"circle": CircleReader, "kit": KitReader}
VERDICTS = {"circle": circle_verdict, "kit": kit_verdict}
# How a run's status is summed up from its providers' statuses: the worst wins.
SEVERITY = [ReconcileRun.FAILED, ReconcileRun.INTERRUPTED, ReconcileRun.QUOTA_RESERVE, ReconcileRun.PROVIDER_BLOCKED,
            ReconcileRun.BUSY, ReconcileRun.NO_RULES, ReconcileRun.SUCCEEDED]


class RunStopped(Exception):
    """The worker running the sweep is shutting down."""


def reconcile(*, provider: str | None = None, customer_ids: list[int] | None = None,
              dry_run: bool = False, trigger: str = "command",
              stop: threading.Event | None = None) -> ReconcileRun:
    """Reconcile ``provider`` (default: both) for ``customer_ids`` (default: everyone).
    ``stop``, when set, ends the run at the next request or chunk (status ``interrupted``)."""
    providers = (provider,) if provider else config.PROVIDERS
    policies = {p: config.policy(p) for p in providers}  # a bad setting fails before any request
    now = timezone.now()
    ReconcileRun.objects.filter(status=ReconcileRun.RUNNING, heartbeat_at__lt=now - STALE_AFTER).update(
        status=ReconcileRun.INTERRUPTED, finished_at=now, error="no heartbeat: the process running it stopped")
    run = ReconcileRun.objects.create(provider=provider or "", trigger=trigger, dry_run=dry_run,
                                      scope={"customers": sorted(customer_ids)} if customer_ids else {})
    with bound(correlation_id=run.correlation_id):
        log.info("reconcile_started", run=run.pk, provider=provider or "all", dry_run=dry_run, trigger=trigger)
        errors = []
        for p in providers:
            counts = ProviderPass(run, p, policies[p], customer_ids, dry_run, stop).execute()
            run.counts[p] = counts
            run.requests += counts["requests"]
            if counts.get("error"):
                errors.append(f"{p}: {counts['error']}")
            run.save(update_fields=["counts", "requests"])
        statuses = {c["status"] for c in run.counts.values()}
        run.status = next(s for s in SEVERITY if s in statuses)
        run.error = "\n".join(errors)[:2000]
        run.finished_at = timezone.now()
        run.save(update_fields=["status", "error", "finished_at"])
        log.info("reconcile_finished", run=run.pk, status=run.status, requests=run.requests,
                 drift={p: c.get("drift", {}) for p, c in run.counts.items()})
    return run


class ProviderPass:
    def __init__(self, run: ReconcileRun, provider: str, policy: str, customer_ids: list[int] | None,
                 dry_run: bool, stop: threading.Event | None = None) -> None:
        self.run = run
        self.stop = stop
        self.provider = provider
        self.customer_ids = customer_ids
        self.repair = policy == config.REPAIR and not dry_run
        self.verdict = VERDICTS[provider]
        self.last_beat = time.monotonic()
        self.reads_started = timezone.now()
        self.counts: dict[str, Any] = {
            "status": ReconcileRun.SUCCEEDED, "policy": policy, "mode": "probe" if customer_ids else "list",
            "customers": 0, "checked": 0, "skipped_in_flight": 0, "drift": {}, "repaired": 0,
            "syncs_requested": 0, "applied_corrected": 0, "requests": 0, "missing_targets": [],
        }

    def execute(self) -> dict[str, Any]:
        counts = self.counts
        rules = RulesVersion.current()
        if self.stop is not None and self.stop.is_set():
            return self._stop(ReconcileRun.INTERRUPTED, "stopped: the worker running it is shutting down")
        if rules is None:
            return self._stop(ReconcileRun.NO_RULES, "no rules loaded")
        if self._busy():
            return self._stop(ReconcileRun.BUSY, "another full run of this provider is in progress")
        if self.provider in blocked_providers():
            return self._stop(ReconcileRun.PROVIDER_BLOCKED, "the provider's lane is paused or its circuit is open")
        budget = Budget(self.provider)
        reader_class = READERS[self.provider]
        scope = Scope.from_rules(rules.parsed, self.provider)
        reader: Reader | None = None
        try:
            with reader_class.client_class.from_settings() as client:
                caller = Caller(client, budget, tick=self._beat)
                reader = reader_class(caller, scope, probe=bool(self.customer_ids))
                if not scope.empty():
                    self.reads_started = timezone.now()
                    reader.load()
                    for batch in self._batches():
                        self._check_batch(reader, batch)
        except RunStopped:
            self._stop(ReconcileRun.INTERRUPTED, "stopped: the worker running it is shutting down")
        except QuotaReserveReached as exc:
            self._stop(ReconcileRun.QUOTA_RESERVE, str(exc))
        except ProviderError as exc:
            self._stop(ReconcileRun.FAILED, f"{exc.reason}: {exc.message}")
        except Exception as exc:  # a bug must not kill the worker thread that runs the sweep
            log.exception("reconcile_crashed", provider=self.provider)
            self._stop(ReconcileRun.FAILED, f"internal error: {type(exc).__name__}")
        finally:
            counts["requests"] = budget.spent
            counts["month_requests"] = used(self.provider)
            counts["month_limit"] = budget.limit
            if reader is not None:
                counts["missing_targets"] = [f"{k}:{t}" for k, t in sorted(reader.missing_targets, key=str)]
        return counts

    def _stop(self, status: str, error: str) -> dict[str, Any]:
        self.counts["status"], self.counts["error"] = status, error
        log.warning("reconcile_stopped", provider=self.provider, status=status, error=error)
        return self.counts

    def _busy(self) -> bool:
        if self.customer_ids:
            return False  # a one-customer check costs little; let the operator run it
        fresh = timezone.now() - STALE_AFTER
        return ReconcileRun.objects.filter(
            status=ReconcileRun.RUNNING, heartbeat_at__gte=fresh, scope={},
        ).filter(Q(provider=self.provider) | Q(provider="")).exclude(pk=self.run.pk).exists()

    def _beat(self) -> None:
        """Called after every request and chunk: stop if asked, and show we are alive."""
        if self.stop is not None and self.stop.is_set():
            raise RunStopped()
        if time.monotonic() - self.last_beat >= HEARTBEAT_SECONDS:
            self.last_beat = time.monotonic()
            ReconcileRun.objects.filter(pk=self.run.pk).update(heartbeat_at=timezone.now())

    def _batches(self) -> Iterator[list[Customer]]:
        """Customers who have an account in this provider or an active entitlement, in
        chunks of CHUNK, streamed with .iterator() so memory stays flat at any size."""
        accounts = ProviderAccount.objects.filter(customer=OuterRef("pk"), provider=self.provider)
        active = Entitlement.objects.filter(customer=OuterRef("pk"), status=Entitlement.ACTIVE)
        customers = Customer.objects.filter(Q(Exists(accounts)) | Q(Exists(active))).order_by("pk")
        if self.customer_ids:
            customers = customers.filter(pk__in=self.customer_ids)
        batch: list[Customer] = []
        for customer in customers.iterator(chunk_size=CHUNK):
            batch.append(customer)
            if len(batch) >= CHUNK:
                yield batch
                batch = []
        if batch:
            yield batch

    def _check_batch(self, reader: Reader, batch: list[Customer]) -> None:
        ids = [c.pk for c in batch]
        accounts = {a.customer_id: a for a in ProviderAccount.objects.filter(provider=self.provider, customer_id__in=ids)}
        # A sync queued or running is about to change this customer: what we read may be
        # stale, and the sync converges them anyway.
        in_flight = set(Job.objects.filter(
            kind=SYNC_KINDS[self.provider], customer_id__in=ids,
            state__in=(JobState.QUEUED, JobState.RETRYING, JobState.RUNNING),
        ).values_list("customer_id", flat=True))
        for customer in batch:
            self.check(reader, customer, accounts.get(customer.pk), customer.pk in in_flight)
        self._beat()

    def check(self, reader: Reader, customer: Customer, account: ProviderAccount | None,
              in_flight: bool) -> None:
        self.counts["customers"] += 1
        if in_flight or (account and account.synced_at and account.synced_at >= self.reads_started):
            self.counts["skipped_in_flight"] += 1  # synced after we started reading: stale read
            return
        desired = desired_state(customer)[self.provider]
        applied = dict(account.applied) if account else {}
        interesting = any(desired.values()) or any(applied.values())
        found = reader.find(customer, account, interesting)
        if found is None:
            return
        self.counts["checked"] += 1
        external_id = account.external_id if account else ""
        verdict = self.verdict(desired, applied, external_id, found, reader.scope)
        self.record(customer, account, applied, external_id, verdict)

    def record(self, customer: Customer, account: ProviderAccount | None, applied: dict[str, Any],
               external_id: str, verdict: Verdict) -> None:
        changed = normalised(verdict.applied) != normalised(applied) or verdict.external_id != external_id
        fixable = self.repair and any(f.repairable for f in verdict.findings)
        with transaction.atomic():
            if self.repair and changed:
                # Make `applied` say what is really there, so the sync's difference (desired −
                # applied adds, applied − desired removals) is exactly the repair.
                account = account or ProviderAccount.objects.get_or_create(customer=customer, provider=self.provider)[0]
                account.applied = verdict.applied
                if verdict.external_id != account.external_id:
                    account.external_id = verdict.external_id
                    if verdict.external_id:  # linked now: the sync uses this e-mail
                        account.email = customer.email
                account.save(update_fields=["applied", "external_id", "email"])
                if not verdict.findings:
                    self.counts["applied_corrected"] += 1
            Drift.objects.bulk_create([
                Drift(run=self.run, customer=customer, provider=self.provider, kind=f.kind,
                      target_kind=f.target_kind, target_id=f.target_id, detail=f.detail[:200],
                      repaired=self.repair and f.repairable)
                for f in verdict.findings])
            if fixable:
                request_sync(self.provider, customer.pk, correlation_id=self.run.correlation_id,
                             cause=f"reconcile:{self.run.pk}")
                self.counts["syncs_requested"] += 1
        for f in verdict.findings:
            self.counts["drift"][f.kind] = self.counts["drift"].get(f.kind, 0) + 1
            self.counts["repaired"] += int(self.repair and f.repairable)
            log.info("reconcile_drift", provider=self.provider, customer_id=customer.pk,
                     email=email_hash(customer.email), kind=f.kind, target_kind=f.target_kind,
                     target_id=f.target_id, repaired=self.repair and f.repairable)
