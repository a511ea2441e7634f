"""Prometheus metrics.

Counters and histograms are recorded where things happen (intake, attempts). With several
processes on a host (gunicorn workers, `frontdesk run`), set PROMETHEUS_MULTIPROC_DIR to a
shared empty folder so /metrics sums them. Gauges about the queue are read from the database at
scrape time, so every process reports the same truth.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from django.db.models import Count, Min
from django.utils import timezone
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import REGISTRY, Collector

EVENTS = Counter("frontdesk_events_received", "Webhook requests by provider, event type and outcome",
                 ["provider", "type", "outcome"])
INTAKE_LATENCY = Histogram("frontdesk_intake_latency_seconds", "Time to answer a webhook request", ["provider"],
                           buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5))
ATTEMPTS = Counter("frontdesk_job_attempts", "Job attempts by provider, kind, outcome and reason",
                   ["provider", "kind", "outcome", "reason"])
ATTEMPT_LATENCY = Histogram("frontdesk_attempt_duration_seconds", "Duration of job attempts", ["provider"],
                            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
RETRIES = Counter("frontdesk_job_retries", "Jobs scheduled for another try", ["provider", "reason"])


class LedgerCollector(Collector):
    """Queue gauges from the database, computed per scrape."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from frontdesk.ledger.models import PENDING_STATES, Job, JobState, ProviderState, WorkerHeartbeat

        now = timezone.now()
        jobs = GaugeMetricFamily("frontdesk_jobs", "Jobs by state, provider and reason code",
                                 labels=["state", "provider", "reason"])
        for row in Job.objects.values("state", "provider", "reason_code").annotate(n=Count("pk")):
            jobs.add_metric([row["state"], row["provider"], row["reason_code"]], row["n"])
        yield jobs
        due = Job.objects.filter(state__in=PENDING_STATES, run_at__lte=now)
        agg = due.aggregate(n=Count("pk"), oldest=Min("run_at"))
        yield GaugeMetricFamily("frontdesk_queue_depth", "Jobs due now and not yet running", value=agg["n"])
        age = (now - agg["oldest"]).total_seconds() if agg["oldest"] else 0.0
        yield GaugeMetricFamily("frontdesk_queue_oldest_due_seconds", "How long the oldest due job has waited", value=age)
        yield GaugeMetricFamily("frontdesk_review_queue_size", "Jobs that need a person",
                                value=Job.objects.filter(state=JobState.NEEDS_REVIEW).count())
        lanes = GaugeMetricFamily("frontdesk_provider_blocked", "1 while a provider lane is blocked, by status",
                                  labels=["provider", "status"])
        for state in ProviderState.objects.all():
            blocked = state.status != ProviderState.OK and bool(state.blocked_until and state.blocked_until > now)
            lanes.add_metric([state.provider, state.status], 1.0 if blocked else 0.0)
        yield lanes
        fresh = WorkerHeartbeat.objects.filter(seen_at__gte=now - timezone.timedelta(minutes=1)).count()
        yield GaugeMetricFamily("frontdesk_workers_alive", "Workers seen in the last minute", value=fresh)


def registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(registry)
    else:
        for collector in (EVENTS, INTAKE_LATENCY, ATTEMPTS, ATTEMPT_LATENCY, RETRIES):
            registry.register(collector)
    registry.register(LedgerCollector())
    return registry


def render() -> bytes:
    return generate_latest(registry())


__all__ = ["ATTEMPTS", "ATTEMPT_LATENCY", "EVENTS", "INTAKE_LATENCY", "REGISTRY", "RETRIES", "render"]
