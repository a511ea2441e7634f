"""End-to-end latency: signed paid checkouts posted at a steady rate (open loop) to gunicorn,
`frontdesk worker` delivering their jobs to the fakes (healthy, no added latency). Per event:
the time from sending the webhook to the last provider call it caused, as the fakes logged it
(each logged call has ``at``, the fake's wall clock when it answered, on this same machine).
The calls of an event are found by its customer's e-mail, which each Circle and Kit call
carries in its body or query string.
"""

from __future__ import annotations

import argparse
import json
import re
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import common
from common import (CHILDREN, PRICE, SECRET, CpuMeter, Plan, config_name, count_values, dbtool, fmt_cpu, http, log,
                    percentiles, prepare_fakes, start_gunicorn, start_worker, take_fake_calls, wait_for_quiet)

TARGET_P95_MS = 500.0
EMAIL_RE = re.compile(r"e2e-[a-z]+-\d+@example\.com")
# Per e-mail: [calls seen, wall time of the last one].
Seen = dict[str, list[float]]


class Sender:
    """Posts signed checkouts of new customers (``e2e-<tag>-<n>@example.com``) at ``rate`` per
    second, on schedule whatever the answers take: each request runs in a pool thread, so a
    slow answer never delays the next one (open loop)."""

    def __init__(self, url: str, rate: float, tag: str, seconds: float | None = None, pool: int = 64) -> None:
        self.url, self.rate, self.tag, self.seconds, self.pool = url, rate, tag, seconds, pool
        self.sent: dict[str, float] = {}  # e-mail → wall time the request started
        self.answers: list[tuple[str, float]] = []  # (status or HTTP code, answer ms)
        self.max_lag = 0.0  # seconds a request started after its scheduled time, at most
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"sender-{tag}", daemon=True)

    def start(self) -> Sender:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=60)

    def wait(self) -> None:
        """Until a sender with ``seconds`` has sent everything and had every answer."""
        while self._thread.is_alive():
            self._thread.join(timeout=1.0)

    def _loop(self) -> None:
        t0 = time.monotonic()
        limit = None if self.seconds is None else round(self.rate * self.seconds)
        i = 0
        with ThreadPoolExecutor(self.pool, thread_name_prefix=f"post-{self.tag}") as pool:
            while not self._stop.is_set() and (limit is None or i < limit):
                due = t0 + i / self.rate
                if self._stop.wait(max(0.0, due - time.monotonic())):
                    break
                pool.submit(self._post, i, due)
                i += 1

    def _post(self, i: int, due: float) -> None:
        email = f"e2e-{self.tag}-{i}@example.com"
        session = common.samples.checkout_session(email, PRICE, name=f"E2E {i}")
        body = json.dumps(common.samples.event("checkout.session.completed", session)).encode()
        req = urllib.request.Request(self.url, data=body, method="POST", headers={
            "Content-Type": "application/json", "Stripe-Signature": common.signature.header(body, [SECRET])})
        self.max_lag = max(self.max_lag, time.monotonic() - due)
        started = time.perf_counter()
        self.sent[email] = time.time()
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                status = json.loads(resp.read()).get("status", "?")
        except urllib.error.HTTPError as exc:
            status = f"http_{exc.code}"
        except OSError as exc:
            status = type(exc).__name__
        self.answers.append((status, 1000 * (time.perf_counter() - started)))


def collect(fakes: dict[str, str], seen: Seen) -> int:
    """Add the Circle and Kit calls logged since the last look to ``seen`` (and clear the logs,
    so a long run does not grow them); return how many of them were 429s."""
    limited = 0
    for name in ("circle", "kit"):
        for call in take_fake_calls(fakes[name]):
            limited += call["status"] == 429
            match = EMAIL_RE.search(call["raw_body"]) or EMAIL_RE.search(json.dumps(call["query"]))
            if match:
                entry = seen.setdefault(match.group(), [0, 0.0])
                entry[0] += 1
                entry[1] = max(entry[1], call["at"])
    return limited


def latency_stats(sent: dict[str, float], seen: Seen, complete_only: bool = False) -> dict[str, Any]:
    """Webhook sent → last provider call, per event. ``complete_only``: only events with the
    usual number of calls (where a call may have been lost between reading and clearing a log)."""
    counts = [int(seen[e][0]) for e in sent if e in seen]
    usual = max(set(counts), key=counts.count) if counts else 0
    latencies = [1000 * (seen[e][1] - t) for e, t in sent.items()
                 if e in seen and (not complete_only or seen[e][0] == usual)]
    return {"events": len(sent), "events_with_calls": len(counts), "measured": len(latencies),
            "calls_per_event": count_values(counts), "e2e_ms": percentiles(latencies)}


WARM_UP_EVENTS = 3


def stored(sender: Sender) -> int:
    return sum(1 for status, _ in sender.answers if status == "stored")


class Pipeline:
    """gunicorn + `frontdesk worker` on a reset database, fakes reset (healthy, high limits)
    and warmed up: what the e2e and memory runs send their traffic to."""

    def __init__(self, env: dict[str, str], tmp: Path, fakes: dict[str, str], label: str,
                 server: tuple[int, int], concurrency: int, processes: int) -> None:
        dbtool(env, "reset")
        prepare_fakes(fakes, 0.0, high_limits=True)
        self.env, self.events = env, 0
        self.gunicorn, port = start_gunicorn(env, tmp, label, *server)
        # One worker process per core, as deployed: a process runs Python on one core at a time.
        self.workers = [start_worker(env, tmp, f"{label}-{i + 1}", concurrency) for i in range(processes)]
        self.worker = self.workers[0]  # the one whose memory is sampled
        self.url = f"http://127.0.0.1:{port}/webhooks/stripe"
        # Every gunicorn worker past its first request, and a few events delivered end to end
        # (the worker's imports, first rows, its start-up sweep) before anything is measured.
        for _ in range(10):
            http("GET", f"http://127.0.0.1:{port}/healthz")
        warm = Sender(self.url, 10.0, "warm", seconds=WARM_UP_EVENTS / 10).start()
        warm.wait()
        if not self.drain(stored(warm), timeout=120)["done"]:
            raise RuntimeError(f"the warm-up events were not delivered within 120 s (see worker-{label}-*.log)")
        for name in ("circle", "kit"):
            take_fake_calls(fakes[name])  # measured calls only from here on

    def drain(self, events: int, timeout: float) -> dict[str, Any]:
        """Wait (bounded) until the jobs of ``events`` more stored events (3 each) are final."""
        self.events += events
        return dbtool(self.env, "wait", str(3 * self.events), str(timeout), timeout=timeout + 60)

    def cpu_roots(self) -> dict[str, int]:
        return {"gunicorn": self.gunicorn.pid, **{f"worker{i + 1}": w.pid for i, w in enumerate(self.workers)}}

    def stop(self) -> None:
        for worker in self.workers:
            CHILDREN.stop(worker)
        CHILDREN.stop(self.gunicorn)


def e2e_phase(env: dict[str, str], tmp: Path, fakes: dict[str, str], fakes_pid: int, plan: Plan,
              args: argparse.Namespace, db_vendor: str, server: tuple[int, int]) -> dict[str, Any]:
    rate, seconds = args.e2e_rate, plan.e2e_seconds
    log(f"e2e: {rate:g} paid checkouts/s for {seconds:g} s to gunicorn ({config_name(*server)}) + "
        f"{args.worker_processes} × frontdesk worker --concurrency {args.concurrency}, fakes healthy")
    pipe = Pipeline(env, tmp, fakes, "e2e", server, args.concurrency, args.worker_processes)
    try:
        background = wait_for_quiet()
        seen: Seen = {}
        meter = CpuMeter({**pipe.cpu_roots(), "fakes": fakes_pid},
                         include_postgres=db_vendor == "postgresql")
        meter.start()
        sender = Sender(pipe.url, rate, "run", seconds=seconds).start()
        sender.wait()
        waited = pipe.drain(stored(sender), timeout=max(120.0, 3 * seconds))
        cpu = meter.stop()
        limited = collect(fakes, seen)
    finally:
        pipe.stop()
    result = {"rate_per_s": rate, "seconds": seconds, "server": config_name(*server), "concurrency": args.concurrency,
              "worker_processes": args.worker_processes,
              **latency_stats(sender.sent, seen), "answers": count_values(s for s, _ in sender.answers),
              "answer_ms": percentiles([a for _, a in sender.answers]),
              "max_send_lag_ms": round(1000 * sender.max_lag, 1), "fake_429": limited,
              "drained": waited["done"], "states": waited["states"], "cpu_pct": cpu,
              "background_busy_pct_before": background, "target_p95_ms": TARGET_P95_MS}
    p95 = result["e2e_ms"]["p95"]
    result["p95_met"] = p95 is not None and p95 < TARGET_P95_MS and result["measured"] == result["events"]
    e = result["e2e_ms"]
    log(f"  {result['measured']}/{result['events']} events measured: e2e p50 {e['p50']} ms, p95 {e['p95']} ms, "
        f"p99 {e['p99']} ms, max {e['max']} ms (target p95 < {TARGET_P95_MS:.0f} ms: "
        f"{'met' if result['p95_met'] else 'NOT met'}); states {waited['states']}")
    return result


def report_e2e(db: str, r: dict[str, Any]) -> list[str]:
    e, a = r["e2e_ms"], r["answer_ms"]
    return [f"\n## {db}: end-to-end latency ({r['rate_per_s']:g} events/s for {r['seconds']:g} s, "
            f"{r['server']}, {r.get('worker_processes', 1)} worker processes of concurrency {r['concurrency']})\n",
            f"webhook sent → last provider call: p50 {e['p50']} ms, p95 {e['p95']} ms, p99 {e['p99']} ms, "
            f"max {e['max']} ms over {r['measured']} of {r['events']} events; target p95 < "
            f"{r['target_p95_ms']:.0f} ms: {'met' if r['p95_met'] else 'NOT met'}",
            f"calls per event {r['calls_per_event']}; webhook answers {r['answers']} (p50 {a['p50']} ms, "
            f"p99 {a['p99']} ms); latest send {r['max_send_lag_ms']} ms behind schedule; 429s at the fakes "
            f"{r['fake_429']}; jobs {r['states']}" + ("" if r["drained"] else " (NOT all final)"),
            f"CPU % of one core: {fmt_cpu(r['cpu_pct'])}"]
