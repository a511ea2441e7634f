"""Database-side helpers for bench/run.py (run in a child process with the benchmark's env).

    python bench/dbtool.py setup RULES_FILE     migrate and load the rules
    python bench/dbtool.py reset                empty every table the benchmark writes (not rules)
    python bench/dbtool.py intake-stats         events / jobs / intake-log rows, as JSON
    python bench/dbtool.py enqueue N PRICE      N paid checkouts through the real webhook view
    python bench/dbtool.py enqueue-backlog N PRICE   the same, then their process_event jobs run here,
                                                leaving only the provider jobs they cause queued
    python bench/dbtool.py wait MIN_JOBS TIMEOUT   poll until every job is final (bounded)
    python bench/dbtool.py delivery-stats       job counts and the worker-side time window
    python bench/dbtool.py count-queries PRICE  SQL statements per webhook and per job kind
    python bench/dbtool.py cprofile-jobs N PRICE     N checkouts' jobs in-process under cProfile
    python bench/dbtool.py cprofile-intake N PRICE   N webhook requests in-process under cProfile

Every command prints one JSON object on stdout. Settings come from the environment exactly as
for the service (DATABASE_URL, STRIPE_WEBHOOK_SECRET, …).
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "frontdesk.settings")

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402
from django.db.models import Count, Max, Min  # noqa: E402

from frontdesk.customers.models import Customer  # noqa: E402
from frontdesk.intake.models import Event, IntakeLog  # noqa: E402
from frontdesk.ledger.models import Attempt, Job, JobState  # noqa: E402

FINAL = (JobState.SUCCEEDED, JobState.NEEDS_REVIEW, JobState.CANCELLED)


def out(data: dict[str, Any]) -> None:
    print(json.dumps(data, default=str), flush=True)


def setup(rules_file: str) -> None:
    from django.core.management import call_command

    from frontdesk.rules.loading import load_file

    call_command("migrate", verbosity=0, interactive=False)
    version, created = load_file(rules_file, loaded_by="bench")
    out({"rules_version": version.number, "created": created})


def _bench_tables() -> list[str]:
    """Every table of frontdesk's own apps except the rules (loaded once per database)."""
    from django.apps import apps

    from frontdesk.rules.models import RulesVersion

    existing = set(connection.introspection.table_names())  # a model may not be migrated yet
    tables = []
    for model in apps.get_models(include_auto_created=True):
        if model.__module__.startswith("frontdesk.") and model is not RulesVersion and model._meta.managed \
                and model._meta.db_table in existing:
            tables.append(model._meta.db_table)
    return sorted(set(tables))


def reset() -> None:
    names = _bench_tables()
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"TRUNCATE {', '.join(names)} RESTART IDENTITY CASCADE")
        else:
            cursor.execute("PRAGMA foreign_keys = OFF")  # autocommit here, so the pragma applies
            for name in names:
                cursor.execute(f"DELETE FROM {name}")
            cursor.execute("PRAGMA foreign_keys = ON")
            cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    out({"reset": names})


def _percentile(sorted_values: list[float], q: float) -> float | None:
    if not sorted_values:
        return None
    index = min(len(sorted_values) - 1, max(0, round(q / 100 * (len(sorted_values) - 1))))
    return sorted_values[index]


def intake_stats() -> None:
    reasons = dict(IntakeLog.objects.values_list("reason").annotate(n=Count("id")).values_list("reason", "n"))
    latencies = sorted(IntakeLog.objects.values_list("latency_ms", flat=True))
    out({
        "events": Event.objects.count(),
        "distinct_event_ids": Event.objects.values("event_id").distinct().count(),
        "jobs": Job.objects.count(),
        "intake_log": IntakeLog.objects.count(),
        "intake_log_reasons": reasons,
        # Time inside the view (verify + store), as the service itself records it.
        "view_ms_p50": _percentile(latencies, 50),
        "view_ms_p99": _percentile(latencies, 99),
    })


def enqueue(count: int, price: str) -> None:
    """Deliver ``count`` paid checkouts for new customers through the webhook view itself
    (Django's test client: the same code path as gunicorn, minus the socket)."""
    started = time.perf_counter()
    outcomes = _post_checkouts(count, price, "bench")
    out({"outcomes": outcomes, "seconds": round(time.perf_counter() - started, 3),
         "jobs": Job.objects.count()})


def enqueue_backlog(count: int, price: str) -> None:
    """A backlog of provider jobs that no worker has touched: ``count`` paid checkouts, then
    their ``stripe.process_event`` jobs run in this process (they call no provider), so what is
    left queued is the sync jobs they caused."""
    from frontdesk.ledger import claim
    from frontdesk.ledger.runner import execute

    started = time.perf_counter()
    outcomes = _post_checkouts(count, price, "backlog")
    processed = 0
    # Every provider but Stripe's excluded: only the process_event jobs are claimed.
    while (job := claim.claim("bench-backlog", ["circle", "kit", "hubspot"])) is not None:
        execute(job, "bench-backlog")
        processed += 1
    by_kind: dict[str, dict[str, int]] = {}
    for row in Job.objects.values("kind", "state").annotate(n=Count("id")):
        by_kind.setdefault(row["kind"], {})[row["state"]] = row["n"]
    out({"outcomes": outcomes, "processed": processed, "by_kind": by_kind,
         "seconds": round(time.perf_counter() - started, 3)})


def _post_checkouts(count: int, price: str, prefix: str) -> dict[str, int]:
    from django.conf import settings
    from django.test import Client

    from frontdesk.intake import samples, signature

    client = Client()
    secrets = settings.STRIPE_WEBHOOK_SECRETS
    outcomes: dict[str, int] = {}
    stamp = int(time.time())
    for i in range(count):
        session = samples.checkout_session(f"{prefix}{stamp}-{i}@example.com", price, name=f"Bench {i}")
        body = json.dumps(samples.event("checkout.session.completed", session)).encode()
        response = client.post("/webhooks/stripe", data=body, content_type="application/json",
                               HTTP_STRIPE_SIGNATURE=signature.header(body, secrets))
        status = response.json().get("status", str(response.status_code)) if response.status_code == 200 \
            else f"http_{response.status_code}"
        outcomes[status] = outcomes.get(status, 0) + 1
    return outcomes


def _state_counts() -> dict[str, int]:
    return dict(Job.objects.values_list("state").annotate(n=Count("id")).values_list("state", "n"))


def wait(min_jobs: int, timeout: float) -> None:
    """Return when at least ``min_jobs`` jobs exist and none is pending or running."""
    started = time.monotonic()
    deadline = started + timeout
    counts: dict[str, int] = {}
    done = False
    while time.monotonic() < deadline:
        counts = _state_counts()
        total = sum(counts.values())
        if total >= min_jobs and sum(counts.get(s, 0) for s in FINAL) == total:
            done = True
            break
        time.sleep(0.1)
    out({"done": done, "waited": round(time.monotonic() - started, 3), "states": counts})


def delivery_stats() -> None:
    by_kind = {}
    for row in Job.objects.values("kind", "state").annotate(n=Count("id")):
        by_kind.setdefault(row["kind"], {})[row["state"]] = row["n"]
    window = Attempt.objects.aggregate(first=Min("started_at"))
    last = Job.objects.aggregate(last=Max("finished_at"))
    first_at, last_at = window["first"], last["last"]
    seconds = (last_at - first_at).total_seconds() if first_at and last_at else None
    outcomes = dict(Attempt.objects.values_list("outcome").annotate(n=Count("id")).values_list("outcome", "n"))
    reasons = dict(Attempt.objects.exclude(reason_code="").values_list("reason_code")
                   .annotate(n=Count("id")).values_list("reason_code", "n"))
    durations: dict[str, list[float]] = {}
    for kind, ms in Attempt.objects.filter(outcome="succeeded").values_list("job__kind", "duration_ms"):
        durations.setdefault(kind, []).append(ms or 0.0)
    attempt_ms = {kind: {"n": len(v), "mean": round(sum(v) / len(v), 1),
                         "p50": round(_percentile(sorted(v), 50) or 0.0, 1),
                         "p90": round(_percentile(sorted(v), 90) or 0.0, 1)} for kind, v in durations.items()}
    errors = sorted({e[:400] for e in Job.objects.exclude(state=JobState.SUCCEEDED).exclude(last_error="")
                     .values_list("last_error", flat=True)[:200]})[:5]
    out({
        "jobs": Job.objects.count(),
        "errors": errors,
        "by_kind": by_kind,
        "states": _state_counts(),
        "attempts": Attempt.objects.count(),
        "attempt_outcomes": outcomes,
        "attempt_ms_by_kind": attempt_ms,  # wall time of one succeeded attempt, provider latency included
        "attempt_reasons": reasons,
        "first_attempt_at": first_at.timestamp() if first_at else None,
        "last_finished_at": last_at.timestamp() if last_at else None,
        "window_seconds": seconds,
        "customers": Customer.objects.count(),
    })


def count_queries(price: str) -> None:
    """Deliver one paid checkout in this process and count SQL statements per job kind (and
    HTTP requests), to see what each job costs besides its provider calls."""
    from django.db import connections
    from django.test.utils import CaptureQueriesContext

    from frontdesk.ledger.worker import Worker

    worker = Worker(concurrency=1, worker_id="bench-count")
    _enqueue_one(price)  # a first checkout creates the per-provider rows; count a later one
    for _ in range(10):
        if not worker.run_one():
            break
    enqueue_quietly = _enqueue_one(price)
    per_kind: dict[str, dict[str, Any]] = {}
    for _ in range(10):  # bounded: one event makes three jobs
        pending = Job.objects.filter(state__in=("queued", "retrying")).order_by("run_at", "id").first()
        if pending is None:
            break
        with CaptureQueriesContext(connections["default"]) as ctx:
            worker.run_one()
        statements = [q["sql"].split()[0].upper() for q in ctx.captured_queries]
        kinds: dict[str, int] = {}
        for verb in statements:
            kinds[verb] = kinds.get(verb, 0) + 1
        per_kind[pending.kind] = {"queries": len(statements), "by_verb": kinds}
        if os.environ.get("BENCH_SHOW_SQL"):
            per_kind[pending.kind]["sql"] = [q["sql"][:160] for q in ctx.captured_queries]
    out({"intake_queries": enqueue_quietly, "jobs": per_kind})


def _enqueue_one(price: str) -> int:
    from django.conf import settings
    from django.db import connections
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from frontdesk.intake import samples, signature

    session = samples.checkout_session(f"count{time.time_ns()}@example.com", price, name="Count Queries")
    body = json.dumps(samples.event("checkout.session.completed", session)).encode()
    with CaptureQueriesContext(connections["default"]) as ctx:
        Client().post("/webhooks/stripe", data=body, content_type="application/json",
                      HTTP_STRIPE_SIGNATURE=signature.header(body, settings.STRIPE_WEBHOOK_SECRETS))
    return len(ctx.captured_queries)


def _profile_rows(prof: Any, seconds: float, top: int) -> dict[str, Any]:
    """cProfile stats → the functions with the most cumulative and most own CPU time."""
    import pstats

    stats = pstats.Stats(prof)
    rows = []
    for (path, line, name), (_cc, calls, tottime, cumtime, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        short = path.split("site-packages/")[-1].split("/work/main/")[-1]
        rows.append({"function": f"{name} ({short}:{line})", "calls": calls,
                     "own_ms": round(tottime * 1000, 1), "cum_ms": round(cumtime * 1000, 1)})
    by_cum = sorted((r for r in rows if "frontdesk/" in r["function"] or "httpx/_client.py" in r["function"]
                     or "ssl.py" in r["function"]), key=lambda r: -r["cum_ms"])[:top]
    by_own = sorted(rows, key=lambda r: -r["own_ms"])[:top]
    return {"seconds": round(seconds, 3), "cumulative": by_cum, "own": by_own}


def cprofile_jobs(count: int, price: str) -> None:
    """Deliver ``count`` paid checkouts in this process, one job at a time, under cProfile:
    a deterministic CPU breakdown of the worker (C calls such as SSL setup included)."""
    import cProfile

    from frontdesk.ledger.worker import Worker

    for _ in range(count):
        _enqueue_one(price)
    worker = Worker(concurrency=1, worker_id="bench-profile")
    worker.run_one()  # warm up imports and first-use rows outside the profile
    prof = cProfile.Profile()
    started = time.process_time()
    jobs = 0
    prof.enable()
    for _ in range(4 * count):  # bounded
        if not worker.run_one():
            break
        jobs += 1
    prof.disable()
    cpu = time.process_time() - started
    result = _profile_rows(prof, cpu, 30)
    result.update({"jobs": jobs, "cpu_ms_per_job": round(1000 * cpu / max(1, jobs), 2)})
    out(result)


def cprofile_intake(count: int, price: str) -> None:
    """``count`` webhook requests through the view (Django test client) under cProfile."""
    import cProfile

    from django.conf import settings
    from django.test import Client

    from frontdesk.intake import samples, signature

    client = Client()
    bodies = []
    for i in range(count + 1):
        session = samples.checkout_session(f"prof{time.time_ns()}-{i}@example.com", price)
        body = json.dumps(samples.event("checkout.session.completed", session)).encode()
        bodies.append((body, signature.header(body, settings.STRIPE_WEBHOOK_SECRETS)))
    body, header = bodies.pop()
    client.post("/webhooks/stripe", data=body, content_type="application/json", HTTP_STRIPE_SIGNATURE=header)
    prof = cProfile.Profile()
    started = time.process_time()
    prof.enable()
    for body, header in bodies:
        client.post("/webhooks/stripe", data=body, content_type="application/json", HTTP_STRIPE_SIGNATURE=header)
    prof.disable()
    cpu = time.process_time() - started
    result = _profile_rows(prof, cpu, 30)
    result.update({"requests": count, "cpu_ms_per_request": round(1000 * cpu / count, 2)})
    out(result)


def main(argv: list[str]) -> int:
    command, args = argv[0], argv[1:]
    if command == "setup":
        setup(args[0])
    elif command == "reset":
        reset()
    elif command == "intake-stats":
        intake_stats()
    elif command == "enqueue":
        enqueue(int(args[0]), args[1])
    elif command == "enqueue-backlog":
        enqueue_backlog(int(args[0]), args[1])
    elif command == "wait":
        wait(int(args[0]), float(args[1]))
    elif command == "cprofile-jobs":
        cprofile_jobs(int(args[0]), args[1])
    elif command == "cprofile-intake":
        cprofile_intake(int(args[0]), args[1])
    elif command == "count-queries":
        count_queries(args[0])
    elif command == "delivery-stats":
        delivery_stats()
    else:
        print(f"unknown command {command!r}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
