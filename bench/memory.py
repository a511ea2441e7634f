"""Worker memory under steady load: the e2e traffic (paid checkouts at --memory-rate per second)
kept up for --memory-minutes while the worker's resident memory (VmRSS of it and any children)
is sampled; the slope of a straight-line fit over the second half says whether it is flat.
End-to-end latency is followed over the run as well, per tenth of it."""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any

from common import CpuMeter, Plan, config_name, fmt_cpu, log, percentiles, proc_table, wait_for_quiet
from e2e import Pipeline, Seen, Sender, collect, latency_stats, stored

FLAT_MIB_PER_HOUR = 5.0  # |slope| at most this over the second half: "flat"
MIN_MINUTES_TO_JUDGE = 10.0  # shorter runs (--quick) print the slope but call nothing flat or not


def rss_kib(root: int) -> int:
    """VmRSS of ``root`` and its descendants, in KiB (0 for a process that is gone)."""
    table = proc_table()
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        total += next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), 0)
        todo.extend(p for p, (_, ppid, _) in table.items() if ppid == pid)
    return total


def slope_mib_per_hour(samples: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of (seconds, MiB) over the second half of the samples: the first
    half includes the warm-up (imports, caches, connection pools) that is not a leak."""
    half = samples[len(samples) // 2:]
    if len(half) < 3:
        return None
    fit = statistics.linear_regression([t for t, _ in half], [m for _, m in half])
    return round(fit.slope * 3600, 2)


def memory_phase(env: dict[str, str], tmp: Path, fakes: dict[str, str], fakes_pid: int, plan: Plan,
                 args: argparse.Namespace, db_vendor: str, server: tuple[int, int]) -> dict[str, Any]:
    minutes, interval, rate = plan.memory_minutes, plan.memory_interval, args.memory_rate
    log(f"memory: {rate:g} paid checkouts/s for {minutes:g} min, worker RSS every {interval:g} s "
        f"(gunicorn {config_name(*server)}, {args.worker_processes} × worker --concurrency {args.concurrency}; "
        f"the first one's RSS)")
    pipe = Pipeline(env, tmp, fakes, "memory", server, args.concurrency, args.worker_processes)
    seen: Seen = {}
    samples: list[tuple[float, float]] = []  # (seconds since start, MiB)
    limited = 0
    try:
        background = wait_for_quiet()
        meter = CpuMeter({**pipe.cpu_roots(), "fakes": fakes_pid},
                         include_postgres=db_vendor == "postgresql")
        meter.start()
        sender = Sender(pipe.url, rate, "mem").start()
        t0 = time.monotonic()
        next_log = 0.0
        while True:
            elapsed = time.monotonic() - t0
            samples.append((round(elapsed, 1), round(rss_kib(pipe.worker.pid) / 1024, 2)))
            limited += collect(fakes, seen)  # keeps the fakes' call logs small over a long run
            if elapsed >= next_log:
                log(f"  memory: {elapsed / 60:.1f} min, worker RSS {samples[-1][1]:.1f} MiB, "
                    f"{len(sender.sent)} events sent")
                next_log += max(interval, 300.0 if minutes >= 10 else 0.0)
            if elapsed >= minutes * 60 or pipe.worker.poll() is not None:
                break
            time.sleep(max(0.0, t0 + len(samples) * interval - time.monotonic()))
        sender.stop()
        waited = pipe.drain(stored(sender), timeout=300)
        cpu = meter.stop()
        limited += collect(fakes, seen)
    finally:
        pipe.stop()
    mib = [m for _, m in samples]
    slope = slope_mib_per_hour(samples)
    half = samples[len(samples) // 2:]
    # Latency per tenth of the run (by send time), to see whether it drifts as tables grow.
    start = min(sender.sent.values(), default=0.0)
    tenths: list[dict[str, float]] = [{} for _ in range(10)]
    for email, sent_at in sender.sent.items():
        tenths[min(9, int(10 * (sent_at - start) / (minutes * 60)))][email] = sent_at
    result = {
        "minutes": minutes, "interval_s": interval, "rate_per_s": rate, "server": config_name(*server),
        "concurrency": args.concurrency, "worker_exited": pipe.worker.returncode,
        "samples": samples, "rss_mib": {"start": mib[0], "end": mib[-1], "max": max(mib), "min": min(mib)},
        "second_half_growth_mib": round(half[-1][1] - half[0][1], 2) if half else None,
        "slope_mib_per_hour": slope, "flat_threshold_mib_per_hour": FLAT_MIB_PER_HOUR,
        "flat": (slope is not None and abs(slope) <= FLAT_MIB_PER_HOUR) if minutes >= MIN_MINUTES_TO_JUDGE else None,
        # Only events with the usual number of calls: a call logged between reading and clearing
        # a fake's log is lost to this count.
        **latency_stats(sender.sent, seen, complete_only=True),
        "e2e_p95_ms_by_tenth": [latency_stats(part, seen, complete_only=True)["e2e_ms"]["p95"] for part in tenths],
        "answers_http_errors": sum(1 for s, _ in sender.answers if s != "stored"),
        "answer_ms": percentiles([a for _, a in sender.answers]), "fake_429": limited,
        "drained": waited["done"], "states": waited["states"], "cpu_pct": cpu,
        "background_busy_pct_before": background,
    }
    log(f"  worker RSS start {mib[0]:.1f}, end {mib[-1]:.1f}, max {max(mib):.1f} MiB; slope over the second half "
        f"{slope} MiB/h: {verdict(result)}")
    return result


def verdict(r: dict[str, Any]) -> str:
    if r["flat"] is None:
        return f"a {r['minutes']:g}-minute run is too short to judge (at least {MIN_MINUTES_TO_JUDGE:g})"
    return "flat" if r["flat"] else "NOT flat"


def report_memory(db: str, r: dict[str, Any]) -> list[str]:
    rss, e = r["rss_mib"], r["e2e_ms"]
    return [f"\n## {db}: worker memory ({r['rate_per_s']:g} events/s for {r['minutes']:g} min, "
            f"RSS every {r['interval_s']:g} s, worker concurrency {r['concurrency']})\n",
            f"worker RSS: start {rss['start']:.1f} MiB, end {rss['end']:.1f} MiB, max {rss['max']:.1f} MiB; "
            f"second half: {r['second_half_growth_mib']} MiB, slope {r['slope_mib_per_hour']} MiB/h → "
            f"{verdict(r)} (threshold ±{r['flat_threshold_mib_per_hour']:g} MiB/h)",
            f"e2e over the run: p50 {e['p50']} ms, p95 {e['p95']} ms, p99 {e['p99']} ms, max {e['max']} ms "
            f"({r['measured']} of {r['events']} events); p95 per tenth of the run: {r['e2e_p95_ms_by_tenth']}",
            f"webhook answers not 'stored': {r['answers_http_errors']}; 429s at the fakes {r['fake_429']}; "
            f"jobs {r['states']}" + ("" if r["drained"] else " (NOT all final)"),
            f"CPU % of one core: {fmt_cpu(r['cpu_pct'])}"]
