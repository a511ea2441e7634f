"""Draining a backlog of Kit jobs at Kit's real rate limit (120 requests per 60 s).

Its own database, its own fakes (Kit enforcing 120/60 per key, its default) and its own rules
(rules-backlog.yaml: one Kit request per kit.sync job), so it can run alongside the memory run.
The backlog is queued before the worker starts: N paid checkouts through the webhook view and
their process_event jobs run in-process, which leaves N kit.sync jobs (and N circle.sync jobs
that have nothing to do). Then one `frontdesk worker` with KIT_RATE_LIMIT=120/60 drains it.
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common import (BENCH, CHILDREN, Databases, Plan, base_env, dbtool, fake_calls, log, max_in_window, start_fakes,
                    start_worker)

RULES = BENCH / "rules-backlog.yaml"
PRICE = "price_newsletter"
LIMIT, WINDOW = 120, 60.0  # Kit's documented limit per API key (shared/providers/kit.md §3)


@dataclass
class Backlog:
    """A queued backlog, ready for a worker."""

    label: str
    env: dict[str, str]
    tmp: Path
    fakes_proc: subprocess.Popen[bytes]
    fakes: dict[str, str]
    queued: dict[str, Any]  # dbtool enqueue-backlog's answer


def prepare(db: str, dbs: Databases, tmp: Path, plan: Plan) -> Backlog:
    label = f"backlog-{db}"
    url, _ = dbs.create(db, "backlog")
    fakes_proc, fakes = start_fakes(tmp, RULES, name=f"fakes-{label}")
    env = base_env(url, tmp / f"var-{label}", fakes, KIT_RATE_LIMIT=f"{LIMIT}/{WINDOW:g}", CIRCLE_RATE_LIMIT="2000/300")
    dbtool(env, "setup", str(RULES), timeout=300)
    n = plan.backlog_jobs
    log(f"backlog: queueing {n} kit.sync jobs (paid checkouts through the webhook view, process_event run "
        f"in-process), before any worker starts")
    queued = dbtool(env, "enqueue-backlog", str(n), PRICE, timeout=600 + 0.5 * n)
    if queued["outcomes"].get("stored") != n or queued["by_kind"].get("kit.sync", {}).get("queued") != n:
        raise RuntimeError(f"the backlog was not queued as expected: {queued}")
    log(f"  queued in {queued['seconds']:.0f} s: {queued['by_kind']}")
    return Backlog(label, env, tmp, fakes_proc, fakes, queued)


def drain(b: Backlog, concurrency: int) -> dict[str, Any]:
    """Start a worker on the backlog and wait (bounded) until every job is final."""
    jobs = sum(sum(states.values()) for states in b.queued["by_kind"].values())
    kit_jobs = b.queued["by_kind"]["kit.sync"]["queued"]
    expected = kit_jobs * WINDOW / LIMIT
    deadline = time.monotonic() + 1.2 * expected + 600
    log(f"backlog: worker --concurrency {concurrency} with KIT_RATE_LIMIT={LIMIT}/{WINDOW:g}; {kit_jobs} Kit "
        f"requests take {expected / 60:.1f} min at the limit")
    started = time.time()
    worker = start_worker(b.env, b.tmp, b.label, concurrency)
    try:
        chunk = 60.0 if expected > 600 else 5.0
        next_log = time.monotonic() + 300
        while True:
            waited = dbtool(b.env, "wait", str(jobs), str(chunk), timeout=chunk + 120)
            if waited["done"] or time.monotonic() > deadline or worker.poll() is not None:
                break
            if time.monotonic() >= next_log:
                log(f"  backlog: {(time.time() - started) / 60:.0f} min, jobs {waited['states']}")
                next_log += 300
    finally:
        CHILDREN.stop(worker)
    stats = dbtool(b.env, "delivery-stats")
    calls = fake_calls(b.fakes["kit"])
    CHILDREN.stop(b.fakes_proc)
    times = sorted(c["at"] for c in calls)
    answered = [c for c in calls if c["status"] != 429]
    span = times[-1] - times[0] if len(times) > 1 else 0.0
    rate = (len(times) - 1) / span if span else None
    drained = stats["last_finished_at"] - started if stats["last_finished_at"] else None
    result = {
        "jobs": jobs, "kit_jobs": kit_jobs, "queued": b.queued, "concurrency": concurrency,
        "kit_rate_limit": f"{LIMIT}/{WINDOW:g}", "limit_per_s": LIMIT / WINDOW,
        "done": waited["done"], "states": stats["states"], "by_kind": stats["by_kind"], "errors": stats["errors"],
        "attempt_outcomes": stats["attempt_outcomes"], "attempt_reasons": stats["attempt_reasons"],
        "drain_s": round(drained, 1) if drained else None,
        "ideal_drain_s": round(len(answered) * WINDOW / LIMIT, 1),
        "kit_requests": len(calls), "kit_429": len(calls) - len(answered),
        "kit_status": {str(s): sum(1 for c in calls if c["status"] == s) for s in sorted({c["status"] for c in calls})},
        "kit_rate_per_s": round(rate, 3) if rate else None,
        "rate_to_limit": round(rate / (LIMIT / WINDOW), 3) if rate else None,
        "kit_max_in_60s": max_in_window(times, 60.0), "kit_max_in_10s": max_in_window(times, 10.0),
        "kit_min_gap_s": round(min((y - x for x, y in zip(times, times[1:])), default=0.0), 4),
    }
    result["at_the_limit"] = (result["kit_429"] == 0 and result["kit_max_in_60s"] <= LIMIT
                              and (result["rate_to_limit"] or 0) >= 0.95)
    log(f"  backlog drained: {result['drain_s']} s (ideal {result['ideal_drain_s']} s), Kit {result['kit_requests']} "
        f"requests at {result['kit_rate_per_s']}/s = {result['rate_to_limit']} of the limit, max "
        f"{result['kit_max_in_60s']} in any 60 s, 429s at the fake {result['kit_429']}, jobs {result['states']}")
    return result


def report_backlog(db: str, r: dict[str, Any]) -> list[str]:
    drain_s, ideal = r["drain_s"], r["ideal_drain_s"]
    return [f"\n## {db}: backlog of {r['kit_jobs']} Kit jobs at Kit's real limit ({r['kit_rate_limit']}, "
            f"worker concurrency {r['concurrency']})\n",
            f"drained in {drain_s} s ({drain_s and round(drain_s / 60, 1)} min); at exactly the limit it would take "
            f"{ideal} s: drain ÷ ideal {drain_s and ideal and round(drain_s / ideal, 3)}",
            f"Kit requests {r['kit_requests']} ({r['kit_status']}): {r['kit_rate_per_s']}/s = {r['rate_to_limit']} "
            f"of the limit ({r['limit_per_s']:.2f}/s); max {r['kit_max_in_60s']} in any 60 s (limit {LIMIT}), "
            f"max {r['kit_max_in_10s']} in any 10 s, smallest gap {r['kit_min_gap_s']} s; 429s at the fake "
            f"{r['kit_429']} → " + ("at the limit, no 429" if r["at_the_limit"] else "NOT at the limit or 429s"),
            f"jobs {r['states']}" + ("" if r["done"] else " (NOT all final)")
            + (f"; errors {r['errors']}" if r["errors"] else "")]
