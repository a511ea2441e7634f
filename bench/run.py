#!/usr/bin/env python
"""frontdesk benchmark: webhook intake and job delivery, on SQLite and PostgreSQL, against the
limits: an intake baseline, end-to-end latency, a backlog at Kit's rate limit, worker memory.

    .venv/bin/python bench/run.py            # full run (hours: the backlog and memory runs are long)
    .venv/bin/python bench/run.py --quick    # seconds to ~2 min per step, for smoke-testing

It prints figures (medians, rates, ratios), not pass/fail. See bench/README.md for what each
step does and docs/performance.md for results. Only 127.0.0.1 is ever contacted; every child
process, temporary directory and temporary PostgreSQL database is removed at the end, also
after Ctrl-C or an error.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import backlog
import common
from common import (BENCH, CHILDREN, FULL, HIGH_LIMIT, PRICE, QUICK, RULES_NAME, CpuMeter, Databases, Plan,
                    base_env, count_values, dbtool, fake_calls, fmt_cpu, log, max_in_window, prepare_fakes,
                    snapshot_code, start_fakes, start_worker, table, wait_for_quiet)
from e2e import e2e_phase, report_e2e
from intake import DEFAULT_SERVER, intake_phase, report_baseline, report_intake
from memory import memory_phase, report_memory


# ---- delivery ------------------------------------------------------------------------------------


def delivery_run(env: dict[str, str], tmp: Path, fakes: dict[str, str], fakes_pid: int, *, label: str,
                 events: int, latency: float, concurrency: int, high_limits: bool, timeout: float,
                 db_vendor: str) -> dict[str, Any]:
    dbtool(env, "reset")
    prepare_fakes(fakes, latency, high_limits)
    enq = dbtool(env, "enqueue", str(events), PRICE, timeout=300)
    if enq["outcomes"].get("stored") != events:
        raise RuntimeError(f"enqueue did not store every event: {enq}")
    background = wait_for_quiet()
    started = time.time()
    worker = start_worker(env, tmp, label, concurrency)
    meter = CpuMeter({"worker": worker.pid, "fakes": fakes_pid}, include_postgres=db_vendor == "postgresql")
    meter.start()
    try:
        waited = dbtool(env, "wait", str(3 * events), str(timeout), timeout=timeout + 60)
        cpu = meter.stop()
        cpu_s = (cpu["worker"] + cpu["fakes"] + cpu.get("postgres", 0.0)) / 100 * meter.elapsed
        worker_cpu_s = cpu["worker"] / 100 * meter.elapsed
    finally:
        CHILDREN.stop(worker)
    stats = dbtool(env, "delivery-stats")
    calls = {name: fake_calls(url) for name, url in fakes.items()}
    window = stats["window_seconds"] or float("nan")
    provider_calls = [c for name in ("circle", "kit") for c in calls[name]]
    kit_times = sorted(c["at"] for c in calls["kit"])
    circle_times = sorted(c["at"] for c in calls["circle"])
    warnings = sum(1 for line in (tmp / f"worker-{label}.log").read_text(errors="replace").splitlines()
                   if "warning" in line.lower() or "error" in line.lower())

    def rate(times: list[float]) -> float | None:
        return round((len(times) - 1) / (times[-1] - times[0]), 3) if len(times) > 1 and times[-1] > times[0] else None

    jobs = stats["jobs"]
    ideal_seconds = len(provider_calls) * latency / concurrency if latency else None
    return {
        "label": label, "events": events, "latency_s": latency, "concurrency": concurrency,
        "rate_limits": {"KIT_RATE_LIMIT": env["KIT_RATE_LIMIT"], "CIRCLE_RATE_LIMIT": env["CIRCLE_RATE_LIMIT"]},
        "finished": waited["done"], "errors": stats["errors"], "states": stats["states"], "by_kind": stats["by_kind"], "jobs": jobs,
        "attempts": stats["attempts"], "attempt_outcomes": stats["attempt_outcomes"],
        "attempt_ms_by_kind": stats.get("attempt_ms_by_kind"),
        "attempt_reasons": stats["attempt_reasons"],
        "window_s": round(window, 3), "wall_s_incl_worker_start": round(time.time() - started, 2),
        "jobs_per_s": round(jobs / window, 2) if window == window else None,
        "succeeded_per_s": round(stats["states"].get("succeeded", 0) / window, 2) if window == window else None,
        "provider_calls": len(provider_calls),
        "calls_by_provider": {n: len(c) for n, c in calls.items()},
        "calls_per_s": round(len(provider_calls) / window, 2) if window == window else None,
        "status_counts": {n: count_values(c["status"] for c in cs) for n, cs in calls.items()},
        "fake_429": {n: sum(1 for c in cs if c["status"] == 429) for n, cs in calls.items()},
        "kit_rate_per_s": rate(kit_times), "circle_rate_per_s": rate(circle_times),
        "kit_max_in_60s": max_in_window(kit_times, 60.0), "kit_max_in_10s": max_in_window(kit_times, 10.0),
        "kit_min_gap_s": round(min((b - a for a, b in zip(kit_times, kit_times[1:])), default=0.0), 4),
        "ideal_window_s": round(ideal_seconds, 3) if ideal_seconds else None,
        "ideal_jobs_per_s": round(jobs / ideal_seconds, 2) if ideal_seconds else None,
        "worker_log_warnings": warnings, "enqueue_s": enq["seconds"], "cpu_pct": cpu,
        # Including the worker's start-up (imports), amortized over the jobs.
        "worker_cpu_ms_per_job": round(1000 * worker_cpu_s / max(1, stats["jobs"]), 2),
        "total_cpu_ms_per_job": round(1000 * cpu_s / max(1, stats["jobs"]), 2),
        "background_busy_pct_before": background,
    }




def diagnostics(env: dict[str, str], fakes: dict[str, str], plan: Plan) -> dict[str, Any]:
    """In-process, single-threaded and deterministic: SQL statements per webhook and per job,
    and cProfile CPU breakdowns of the webhook view and of the jobs (fakes at 0 ms)."""
    result: dict[str, Any] = {}
    dbtool(env, "reset")
    prepare_fakes(fakes, 0.0, high_limits=True)
    result["queries"] = dbtool(env, "count-queries", PRICE)
    log(f"SQL statements: webhook {result['queries']['intake_queries']}, per job "
        + ", ".join(f"{k} {v['queries']}" for k, v in result["queries"]["jobs"].items()))
    dbtool(env, "reset")
    result["cprofile_intake"] = dbtool(env, "cprofile-intake", str(50 if plan is QUICK else 300), PRICE)
    dbtool(env, "reset")
    prepare_fakes(fakes, 0.0, high_limits=True)
    result["cprofile_jobs"] = dbtool(env, "cprofile-jobs", str(5 if plan is QUICK else 30), PRICE)
    log(f"in-process CPU: {result['cprofile_intake']['cpu_ms_per_request']} ms per webhook request, "
        f"{result['cprofile_jobs']['cpu_ms_per_job']} ms per job")
    return result


def delivery_phase(env: dict[str, str], tmp: Path, fakes: dict[str, str], fakes_pid: int, plan: Plan,
                   args: argparse.Namespace, db_vendor: str, kit_limit: bool = True) -> dict[str, Any]:
    results: dict[str, Any] = {}
    runs = [(0.0, args.concurrency), (0.1, args.concurrency)]
    if plan.concurrency_sweep:
        # Does throughput at 100 ms follow the concurrency? (It should, if nothing else limits it.)
        runs += [(0.1, c) for c in (args.concurrency // 2, args.concurrency * 2) if c >= 1]
    for latency, concurrency in runs:
        label = f"latency-{int(latency * 1000)}ms" + ("" if concurrency == args.concurrency else f"-c{concurrency}")
        log(f"delivery: {plan.delivery_events} paid checkouts, provider latency {latency * 1000:.0f} ms, "
            f"worker --concurrency {concurrency}, limits {HIGH_LIMIT}")
        r = delivery_run(env, tmp, fakes, fakes_pid, label=label, events=plan.delivery_events, latency=latency,
                         concurrency=concurrency, high_limits=True, timeout=plan.wait_timeout,
                         db_vendor=db_vendor)
        log(f"  {r['jobs']} jobs in {r['window_s']:.2f} s: {r['jobs_per_s']} jobs/s, "
            f"{r['calls_per_s']} provider calls/s, states {r['states']}")
        if not r["finished"] or r["errors"]:
            log(f"  NOT all jobs succeeded; errors: {r['errors']}")
        results[label] = r
    if not kit_limit:
        return results
    kit_env = {**env, "KIT_RATE_LIMIT": "120/60", "CIRCLE_RATE_LIMIT": "2000/300"}
    n = plan.kit_limit_customers
    log(f"delivery at Kit's real limit (120/60): {n} paid checkouts ({3 * n} Kit calls); fakes enforce 120/60")
    r = delivery_run(kit_env, tmp, fakes, fakes_pid, label="kit-limit", events=n, latency=0.0,
                     concurrency=args.concurrency, high_limits=False,
                     timeout=max(plan.wait_timeout, 3 * n * 0.6 + 60), db_vendor=db_vendor)
    log(f"  Kit: {r['calls_by_provider']['kit']} calls at {r['kit_rate_per_s']}/s (limit 2.0/s), "
        f"max {r['kit_max_in_60s']} in any 60 s, 429s at the fake: {r['fake_429']['kit']}, states {r['states']}")
    results["kit-limit"] = r
    return results


# ---- the long runs: backlog and memory, side by side ---------------------------------------------


def long_runs(db: str, res: dict[str, Any], env: dict[str, str], dbs: Databases, tmp: Path,
              fakes: dict[str, str], fakes_pid: int, plan: Plan, args: argparse.Namespace, vendor: str,
              server: tuple[int, int]) -> None:
    """The backlog drain (its own database, fakes and worker) and the memory run, at the same
    time when both are selected: each takes an hour or more at full size."""
    queued = backlog.prepare(db, dbs, tmp, plan) if "backlog" in args.only else None
    if queued is None or "memory" not in args.only:
        if queued:
            res["backlog"] = backlog.drain(queued, args.concurrency)
        if "memory" in args.only:
            res["memory"] = memory_phase(env, tmp, fakes, fakes_pid, plan, args, vendor, server)
        return
    outcome: dict[str, Any] = {}

    def drain() -> None:
        try:
            outcome["result"] = backlog.drain(queued, args.concurrency)
        except BaseException as exc:  # re-raised in the main thread
            outcome["error"] = exc

    thread = threading.Thread(target=drain, name="backlog", daemon=True)
    thread.start()
    res["memory"] = memory_phase(env, tmp, fakes, fakes_pid, plan, args, vendor, server)
    if thread.is_alive():
        log("memory run done; waiting for the backlog to drain")
    while thread.is_alive():
        thread.join(timeout=1.0)  # a short join keeps Ctrl-C working
    if "error" in outcome:
        raise outcome["error"]
    res["backlog"] = outcome["result"]


# ---- report --------------------------------------------------------------------------------------


def report(results: dict[str, Any]) -> str:
    parts = [f"machine: {results['machine']}", f"code: {results['code']}"]
    for db, res in results["databases"].items():
        if "what_if" in res:
            parts.append(f"\n# {db}: {res['what_if']} — NOT the shipped configuration")
        if "intake" in res:
            parts += report_intake(db, res["intake"], results["connections"])
        if "baseline" in res:
            parts += report_baseline(db, res["baseline"])
        if "delivery" in res:
            parts.append(f"\n## {db}: delivery\n")
            rows = []
            for label, r in res["delivery"].items():
                rows.append([label, r["concurrency"], r["rate_limits"]["KIT_RATE_LIMIT"], r["jobs"], r["window_s"],
                             r["jobs_per_s"], r["calls_per_s"], r["ideal_jobs_per_s"] or "-",
                             r["fake_429"]["kit"] + r["fake_429"]["circle"],
                             ", ".join(f"{k} {v}" for k, v in r["states"].items()), r["worker_cpu_ms_per_job"],
                             fmt_cpu(r["cpu_pct"])])
            parts.append(table(["run", "conc.", "Kit limit", "jobs", "s", "jobs/s", "calls/s",
                                "ideal jobs/s", "429s", "states", "worker CPU ms/job", "CPU % of one core"], rows))
            parts.append("mean wall ms of one succeeded attempt (provider latency included): " + "; ".join(
                f"{label}: " + ", ".join(f"{kind.split('.')[0]} {v['mean']:.0f}"
                                         for kind, v in (r.get("attempt_ms_by_kind") or {}).items())
                for label, r in res["delivery"].items()))
            k = res["delivery"].get("kit-limit")
            if k:
                parts.append(f"Kit at 120/60: {k['calls_by_provider']['kit']} calls, mean {k['kit_rate_per_s']}/s "
                             f"(limit 2.00/s), max {k['kit_max_in_60s']} in any 60 s, max {k['kit_max_in_10s']} "
                             f"in any 10 s, smallest gap {k['kit_min_gap_s']} s, 429s at the fake: "
                             f"{k['fake_429']['kit']}")
        if "diagnostics" in res:
            d = res["diagnostics"]
            q = d["queries"]
            parts.append(f"\n## {db}: diagnostics (in-process, one thread)\n")
            parts.append(f"SQL statements: webhook {q['intake_queries']}; "
                         + "; ".join(f"{k} {v['queries']} ({', '.join(f'{vb} {n}' for vb, n in v['by_verb'].items())})"
                                     for k, v in q["jobs"].items()))
            for key, unit in (("cprofile_intake", "cpu_ms_per_request"), ("cprofile_jobs", "cpu_ms_per_job")):
                prof = d[key]
                parts.append(f"\n{key}: {prof[unit]} ms CPU per {'request' if 'intake' in key else 'job'}; "
                             "cumulative wall ms (cProfile):")
                parts += [f"  {r['cum_ms']:9.1f}  {r['calls']:6d}x  {r['function']}" for r in prof["cumulative"][:14]]
                parts.append("  own time:")
                parts += [f"  {r['own_ms']:9.1f}  {r['calls']:6d}x  {r['function']}" for r in prof["own"][:6]]
        if "e2e" in res:
            parts += report_e2e(db, res["e2e"])
        if "backlog" in res:
            parts += backlog.report_backlog(db, res["backlog"])
        if "memory" in res:
            parts += report_memory(db, res["memory"])
    return "\n".join(parts)


# ---- main ----------------------------------------------------------------------------------------


# ---- main ----------------------------------------------------------------------------------------


def machine() -> str:
    mem_kb = int(next(line for line in Path("/proc/meminfo").read_text().splitlines()
                      if line.startswith("MemTotal")).split()[1])
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), "?")
    return (f"{os.cpu_count()} CPUs ({cpu}), {mem_kb / 1024 / 1024:.1f} GiB RAM, {platform.system()} "
            f"{platform.release()}, Python {platform.python_version()}")


def ensure_wrk() -> None:
    if shutil.which("wrk"):
        return
    log("wrk is missing: apt-get update && apt-get install -y wrk")
    subprocess.run(["apt-get", "update"], check=True, timeout=600)
    subprocess.run(["apt-get", "install", "-y", "wrk"], check=True, timeout=600)
    if not shutil.which("wrk"):
        raise RuntimeError("could not install wrk")


WHAT_IFS = {
    "conn-per-request": ("conn_per_request_settings",
                         "CONN_MAX_AGE=0, a new DB connection per request (frontdesk before f4e51c4); intake only"),
    "shared-ssl": ("shared_ssl_settings", "one shared SSL context instead of one per job's httpx.Client; delivery only"),
}


PARTS = ("intake", "baseline", "delivery", "e2e", "backlog", "memory")


def parts_arg(value: str) -> list[str]:
    parts = list(PARTS) if value == "all" else [p for p in value.split(",") if p]
    unknown = set(parts) - set(PARTS)
    if unknown or not parts:
        raise argparse.ArgumentTypeError(f"choose 'all' or some of {', '.join(PARTS)}, comma-separated")
    return parts


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="seconds to ~2 min per step (smoke test)")
    p.add_argument("--db", choices=("sqlite", "postgres", "both"), default="both")
    p.add_argument("--only", type=parts_arg, default=list(PARTS), metavar="PART[,PART]",
                   help=f"which parts: all (default) or some of {', '.join(PARTS)}; backlog and memory "
                        "together run side by side")
    p.add_argument("--connections", type=int, default=32, help="wrk connections (default 32)")
    p.add_argument("--wrk-threads", type=int, default=1,
                   help="wrk threads (default 1: one thread keeps up and leaves the cores to the server)")
    p.add_argument("--server", type=lambda s: tuple(int(x) for x in s.split("x")), default=None,
                   metavar="WORKERSxTHREADS", help="skip the sweep and use this gunicorn setup, e.g. 4x1")
    p.add_argument("--repeats", type=int, default=None, help="full-length intake runs to take the median of (default 3)")
    p.add_argument("--events", type=int, default=None, help="paid checkouts per delivery run (default 300; quick 30)")
    p.add_argument("--concurrency", type=int, default=8, help="frontdesk worker --concurrency (default 8)")
    p.add_argument("--worker-processes", type=int, default=2,
                   help="frontdesk worker processes for e2e and memory (default 2: one per core, as deployed)")
    p.add_argument("--memory-rate", type=float, default=5.0,
                   help="paid checkouts per second during the memory run (default 5: steady traffic that "
                        "leaves the machine room for the other parts)")
    p.add_argument("--e2e-rate", type=float, default=20.0, help="paid checkouts per second for e2e and memory (default 20)")
    p.add_argument("--e2e-seconds", type=float, default=None, help="length of the e2e run (default 60; quick 10)")
    p.add_argument("--memory-minutes", type=float, default=None, help="length of the memory run (default 60; quick 1)")
    p.add_argument("--memory-interval", type=float, default=None, help="seconds between RSS samples (default 30; quick 5)")
    p.add_argument("--backlog-jobs", type=int, default=None,
                   help="Kit jobs queued for the backlog run (default 10000 ≈ 85 min at 120/60; quick 150)")
    p.add_argument("--profile", action="store_true", help="add a py-spy pass over the gunicorn workers")
    p.add_argument("--what-if", dest="what_if", default="",
                   type=lambda v: [w for w in v.split(",") if w],
                   help="comma-separated extra runs with one setting changed (bench/whatif/, NOT shipped): "
                        + "; ".join(f"{k} = {d}" for k, (_, d) in WHAT_IFS.items()))
    p.add_argument("--quiet-wait", type=float, default=180.0,
                   help="longest wait (s) before each run for other load on the machine to stop")
    p.add_argument("--code", choices=("head", "worktree"), default="head",
                   help="what to measure: the last commit (default) or the working tree as it is at start; "
                        "either way a snapshot, so edits during the run change nothing")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory (logs, wrk output)")
    return p.parse_args(argv)


def make_plan(args: argparse.Namespace) -> Plan:
    plan = QUICK if args.quick else FULL
    for option, field in (("events", "delivery_events"), ("repeats", "repeats"), ("e2e_seconds", "e2e_seconds"),
                          ("memory_minutes", "memory_minutes"), ("memory_interval", "memory_interval"),
                          ("backlog_jobs", "backlog_jobs")):
        if getattr(args, option):
            setattr(plan, field, getattr(args, option))
    return plan


def run_database(db: str, results: dict[str, Any], dbs: Databases, tmp: Path, fakes: dict[str, str],
                 fakes_pid: int, plan: Plan, args: argparse.Namespace) -> None:
    """Every selected part on one database, in order; the results land in ``results`` as they come."""
    url, vendor = dbs.create(db)
    env = base_env(url, tmp / "var", fakes)
    log(f"== {db}: migrate and load {RULES_NAME}")
    dbtool(env, "setup", str(common.CODE / RULES_NAME), timeout=300)
    res: dict[str, Any] = {}
    results["databases"][db] = res
    parts = args.only
    if "intake" in parts or "baseline" in parts:
        # The baseline alone still needs frontdesk's figures for the ratios: same setup, no sweep.
        server = None if "intake" in parts else args.server or DEFAULT_SERVER[vendor]
        res["intake"], base = intake_phase(env, tmp, plan, args, vendor, server=server, baseline="baseline" in parts)
        if base:
            res["baseline"] = base
    if "delivery" in parts:
        res["delivery"] = delivery_phase(env, tmp, fakes, fakes_pid, plan, args, vendor)
    if "intake" in parts or "delivery" in parts:
        res["diagnostics"] = diagnostics(env, fakes, plan)
    # gunicorn for e2e and memory: as chosen, else the intake's fastest, else the usual one.
    server = args.server or ((res["intake"]["workers"], res["intake"]["threads"]) if "intake" in res
                             else DEFAULT_SERVER[vendor])
    if "e2e" in parts:
        res["e2e"] = e2e_phase(env, tmp, fakes, fakes_pid, plan, args, vendor, server)
    if "backlog" in parts or "memory" in parts:
        long_runs(db, res, env, dbs, tmp, fakes, fakes_pid, plan, args, vendor, server)
    for what_if in args.what_if:
        module, description = WHAT_IFS[what_if]
        log(f"== {db}: WHAT-IF {what_if}: {description} (bench/whatif/{module}.py; NOT shipped)")
        wenv = {**env, "DJANGO_SETTINGS_MODULE": module,
                "PYTHONPATH": f"{common.CODE}{os.pathsep}{BENCH / 'whatif'}"}
        wres: dict[str, Any] = {"what_if": description}
        results["databases"][f"{db} (what-if {what_if})"] = wres
        if what_if == "conn-per-request" and "intake" in res:
            same = (res["intake"]["workers"], res["intake"]["threads"])
            wres["intake"], _ = intake_phase(wenv, tmp, plan, args, vendor, server=same)
        if what_if == "shared-ssl" and "delivery" in res:
            wres["delivery"] = delivery_phase(wenv, tmp, fakes, fakes_pid, plan, args, vendor, kit_limit=False)
            wres["diagnostics"] = diagnostics(wenv, fakes, plan)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    plan = make_plan(args)
    common.QUIET_WAIT = 10.0 if args.quick else args.quiet_wait

    def on_signal(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    tmp = Path(tempfile.mkdtemp(prefix="frontdesk-bench-"))
    dbs = Databases(tmp)
    results: dict[str, Any] = {"machine": machine(), "code": "?", "quick": args.quick, "parts": args.only,
                               "connections": args.connections, "wrk_threads": args.wrk_threads,
                               "concurrency": args.concurrency, "plan": vars(plan),
                               "started": time.strftime("%Y-%m-%d %H:%M:%S"), "databases": {}}
    code = 0
    try:
        if {"intake", "baseline"} & set(args.only):
            ensure_wrk()
        log(f"temporary directory {tmp}; {results['machine']}")
        results["code"] = snapshot_code(tmp, args.code)
        log(f"code under test: {results['code']}, copied to {common.CODE}")
        fakes_proc, fakes = start_fakes(tmp)
        log(f"fakes: {fakes}")
        for db in ["sqlite", "postgres"] if args.db == "both" else [args.db]:
            run_database(db, results, dbs, tmp, fakes, fakes_proc.pid, plan, args)
        results["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
    except KeyboardInterrupt:
        log("interrupted: cleaning up")
        code = 130
    except Exception as exc:
        log(f"error: {type(exc).__name__}: {exc}")
        code = 1
        if not args.keep:
            log(f"(logs are in {tmp}; keeping it)")
            args.keep = True
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # cleanup must not be interrupted half-way
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        CHILDREN.stop_all()
        dbs.drop_all()
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            log(f"kept {tmp}")
    if results["databases"]:
        out_dir = BENCH / "results"
        out_dir.mkdir(exist_ok=True)
        name = time.strftime("%Y%m%d-%H%M%S") + ("-quick" if args.quick else "") + ".json"
        for db in results["databases"].values():
            intake_runs = [*db.get("intake", {}).get("sweep", []), *db.get("intake", {}).get("runs", []),
                           *db.get("baseline", {}).get("runs", [])]
            for r in intake_runs:
                r.pop("wrk_output", None) if args.quick else None
        (out_dir / name).write_text(json.dumps(results, indent=2, default=str))
        print("\n" + report(results))
        print(f"\nraw results: {out_dir / name}")
    return code


if __name__ == "__main__":
    sys.exit(main())
