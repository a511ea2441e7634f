"""Webhook intake under wrk: frontdesk's view, and the minimal baseline (baseline_app.py) with
the same gunicorn setup and the same wrk run shape, interleaved, with their ratios."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

import common
from common import (BENCH, CHILDREN, PRICE, PYTHON, ROOT, SECRET, CpuMeter, Plan, config_name, dbtool, fmt_cpu, log,
                    ms, proc_table, start_gunicorn, table, wait_for_quiet)

MAX_RATE_FOR_BODIES = 4000  # pre-signed bodies per second of wrk run: far above what 2 cores serve
# Used when the baseline is measured without a sweep and no --server: the fastest setups in
# docs/performance.md.
DEFAULT_SERVER = {"sqlite": (2, 1), "postgresql": (2, 4)}
FRONTDESK, BASELINE = "frontdesk", "baseline"


def write_bodies(directory: Path, count: int, threads: int) -> float:
    """``count`` distinct signed checkout events, split over one file per wrk thread."""
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    started = time.perf_counter()
    files = [open(directory / f"bodies.{t}.txt", "w") for t in range(threads)]  # noqa: SIM115
    try:
        stamp = int(time.time())
        for i in range(count):
            session = common.samples.checkout_session(f"intake{stamp}-{i}@example.com", PRICE)
            body = json.dumps(common.samples.event("checkout.session.completed", session))
            header = common.signature.header(body.encode(), [SECRET])
            files[i % threads].write(f"{header}\t{body}\n")
    finally:
        for f in files:
            f.close()
    return time.perf_counter() - started


def app_tool(env: dict[str, str], app: str, command: str) -> dict[str, Any]:
    """``reset`` or ``stats`` of the table(s) the app writes (dbtool.py or baseline_app.py)."""
    if app == FRONTDESK:
        return dbtool(env, "reset" if command == "reset" else "intake-stats")
    result = subprocess.run([PYTHON, str(BENCH / "baseline_app.py"), command], env=env, cwd=common.CODE,
                            capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise RuntimeError(f"baseline_app.py {command} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def intake_run(env: dict[str, str], tmp: Path, workers: int, threads: int, seconds: int,
               connections: int, wrk_threads: int, label: str, db_vendor: str,
               profile: Path | None = None, app: str = FRONTDESK) -> dict[str, Any]:
    app_tool(env, app, "reset")
    bodies = min(seconds * MAX_RATE_FOR_BODIES, 80_000)
    gen_seconds = write_bodies(tmp / "bodies", bodies, wrk_threads)
    spec = ("frontdesk.wsgi", None) if app == FRONTDESK else ("baseline_app:app", BENCH)
    server, port = start_gunicorn(env, tmp, label, workers, threads, *spec)
    try:
        time.sleep(0.5)  # let every worker finish booting
        # Warm every worker up (gunicorn imports the URLconf and views on each worker's first
        # request), with a request that writes nothing.
        subprocess.run(["wrk", "-t1", "-c8", "-d1s", f"http://127.0.0.1:{port}/healthz"], cwd=ROOT,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30)
        background = wait_for_quiet()
        profilers = start_profilers(server.pid, seconds, profile) if profile else []
        meter = CpuMeter({"gunicorn": server.pid}, include_postgres=db_vendor == "postgresql")
        out_path = tmp / f"wrk-{label}.txt"
        with open(out_path, "wb") as out:
            meter.start()
            wrk = subprocess.Popen(
                ["wrk", "-t", str(wrk_threads), "-c", str(connections), "-d", f"{seconds}s", "--timeout", "10s",
                 "--latency", "-s", str(BENCH / "intake.lua"), f"http://127.0.0.1:{port}/webhooks/stripe",
                 "--", str(tmp / "bodies")],
                stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
            deadline = time.monotonic() + seconds + 60
            status, rusage = 0, None
            while time.monotonic() < deadline:
                pid, status, rusage = os.wait4(wrk.pid, os.WNOHANG)
                if pid:
                    wrk.returncode = os.waitstatus_to_exitcode(status)
                    break
                time.sleep(0.05)
            else:
                wrk.kill()
                wrk.wait()
                raise RuntimeError("wrk did not finish in time")
            wrk_cpu = rusage.ru_utime + rusage.ru_stime if rusage else 0.0
            cpu = meter.stop({"wrk": wrk_cpu})
            server_cpu_s = (cpu["gunicorn"] + cpu.get("postgres", 0.0)) / 100 * meter.elapsed
        for p in profilers:
            p.wait(timeout=seconds + 60)
        time.sleep(0.5)  # in-flight requests of the last moment finish
    finally:
        CHILDREN.stop(server)
    text = out_path.read_text()
    if wrk.returncode != 0 or "BENCH_JSON" not in text:
        raise RuntimeError(f"wrk failed ({wrk.returncode}):\n{text[-2000:]}")
    w = json.loads(text.split("BENCH_JSON", 1)[1].strip().splitlines()[0])
    db = app_tool(env, app, "stats")
    duration = w["duration_us"] / 1e6
    return {
        "label": label, "app": app, "config": config_name(workers, threads), "workers": workers, "threads": threads,
        "seconds": round(duration, 2), "connections": connections,
        "requests_per_s": round(w["responses"] / duration, 1),
        "stored_per_s": round(w["stored"] / duration, 1),
        "p50_ms": w["latency_us"]["p50"] / 1000, "p90_ms": w["latency_us"]["p90"] / 1000,
        "p99_ms": w["latency_us"]["p99"] / 1000, "p999_ms": w["latency_us"]["p999"] / 1000,
        "max_ms": w["latency_us"]["max"] / 1000,
        "responses": w["responses"], "requests_generated": w["generated"], "stored": w["stored"],
        "duplicate": w["duplicate"], "ignored": w["ignored"], "other": w["other"], "non200": w["non200"],
        "socket_errors": w["errors"], "bodies": w["bodies"], "body_reuse": w["wraps"] > 0,
        "db_events": db["events"], "db_distinct_event_ids": db["distinct_event_ids"], "db_jobs": db.get("jobs"),
        "db_intake_log": db.get("intake_log"), "db_intake_reasons": db.get("intake_log_reasons"),
        "view_ms_p50": db.get("view_ms_p50"), "view_ms_p99": db.get("view_ms_p99"),
        "cpu_pct": cpu, "background_busy_pct_before": background, "body_generation_s": round(gen_seconds, 2),
        # CPU per answered request of gunicorn + PostgreSQL: robust against other load on the
        # machine; 2 cores / this = what the server could answer with the cores to itself.
        "server_cpu_ms_per_request": round(1000 * server_cpu_s / max(1, w["responses"]), 2),
        "wrk_output": text.split("BENCH_JSON", 1)[0].strip(),
    }


def find_py_spy() -> str | None:
    for candidate in (shutil.which("py-spy"), "/tmp/pyspy-venv/bin/py-spy"):
        if candidate and Path(candidate).exists():
            return candidate
    return None


def start_profilers(master_pid: int, seconds: int, out_dir: Path) -> list[subprocess.Popen[bytes]]:
    """py-spy on every gunicorn worker (collapsed stacks), for the --profile pass only."""
    py_spy = find_py_spy()
    if not py_spy:
        return []
    out_dir.mkdir(parents=True, exist_ok=True)
    table = proc_table()
    workers = [pid for pid, (_, ppid, _) in table.items() if ppid == master_pid]
    return [subprocess.Popen([py_spy, "record", "--pid", str(pid), "--duration", str(seconds), "--rate", "200",
                              "--format", "raw", "--nonblocking", "-o", str(out_dir / f"worker-{pid}.txt")],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for pid in workers]


def summarize_profile(directory: Path, top: int = 60) -> dict[str, Any]:
    """Self and inclusive sample shares per function from py-spy's collapsed stacks."""
    self_counts: dict[str, int] = {}
    incl_counts: dict[str, int] = {}
    total = 0
    for path in directory.glob("worker-*.txt"):
        for line in path.read_text().splitlines():
            stack, _, count_text = line.rpartition(" ")
            if not count_text.isdigit():
                continue
            count = int(count_text)
            frames = [f.split(" (")[0] + " (" + f.split(" (")[1].split(":")[0].split("/")[-1] + ")"
                      if " (" in f else f for f in stack.split(";")]
            total += count
            self_counts[frames[-1]] = self_counts.get(frames[-1], 0) + count
            for frame in set(frames):
                incl_counts[frame] = incl_counts.get(frame, 0) + count
    share = lambda d: [(k, round(100 * v / total, 1)) for k, v in sorted(d.items(), key=lambda kv: -kv[1])[:top]]  # noqa: E731
    return {"samples": total, "self": share(self_counts), "inclusive": share(incl_counts)} if total else {}


MEDIAN_KEYS = ("stored_per_s", "requests_per_s", "p50_ms", "p90_ms", "p99_ms", "p999_ms", "server_cpu_ms_per_request")


def medians(runs: list[dict[str, Any]]) -> dict[str, float]:
    return {key: statistics.median(r[key] for r in runs) for key in MEDIAN_KEYS}


def intake_phase(env: dict[str, str], tmp: Path, plan: Plan, args: argparse.Namespace, db_vendor: str,
                 server: tuple[int, int] | None = None,
                 baseline: bool = False) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """frontdesk's intake (a sweep of gunicorn setups unless one is given, then ``plan.repeats``
    runs of the fastest) and, with ``baseline``, the baseline app on that setup after each of
    those runs: interleaved, so that load from outside drifting over time hits both alike."""
    sweep = []
    server = server or args.server
    for workers, threads in plan.sweep if not server else []:
        label = f"sweep-{workers}x{threads}"
        log(f"intake sweep: {config_name(workers, threads)}, {plan.sweep_seconds} s")
        r = intake_run(env, tmp, workers, threads, plan.sweep_seconds, args.connections, args.wrk_threads,
                       label, db_vendor)
        log(f"  {r['stored_per_s']:.0f} events/s stored, p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms")
        sweep.append(r)
    if server:
        workers, threads = server
    else:
        best = max(sweep, key=lambda r: r["stored_per_s"])
        workers, threads = best["workers"], best["threads"]
    runs: list[dict[str, Any]] = []
    base_runs: list[dict[str, Any]] = []
    for i in range(plan.repeats):
        for app, label, into in ((FRONTDESK, f"main-{i}", runs), (BASELINE, f"baseline-{i}", base_runs)):
            if app == BASELINE and not baseline:
                continue
            log(f"intake ({app}): {config_name(workers, threads)}, {plan.intake_seconds} s, "
                f"run {i + 1}/{plan.repeats}")
            r = intake_run(env, tmp, workers, threads, plan.intake_seconds, args.connections, args.wrk_threads,
                           label, db_vendor, app=app)
            log(f"  {r['stored_per_s']:.0f} events/s stored, p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms, "
                f"duplicates {r['duplicate']}, stored in DB {r['db_events']} of {r['requests_generated']} sent, "
                f"server CPU {r['server_cpu_ms_per_request']} ms/request")
            into.append(r)
    result: dict[str, Any] = {"sweep": sweep, "runs": runs, "median": medians(runs),
                              "config": config_name(workers, threads), "workers": workers, "threads": threads}
    if args.profile and "DJANGO_SETTINGS_MODULE" not in env:
        directory = tmp / f"profile-intake-{db_vendor}-{len(list(tmp.glob('profile-intake-*')))}"
        if find_py_spy():
            log(f"intake profile pass with py-spy ({plan.sweep_seconds} s, not counted)")
            intake_run(env, tmp, workers, threads, plan.sweep_seconds, args.connections, args.wrk_threads,
                       "profile", db_vendor, profile=directory)
            result["profile"] = summarize_profile(directory)
        else:
            log("py-spy not found: skipped the profile pass (pip install py-spy into a separate venv)")
    return result, baseline_summary(result, base_runs) if baseline else None


def baseline_summary(intake: dict[str, Any], base_runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians of the baseline runs and frontdesk ÷ baseline for each figure. The target: intake
    within 2× of the baseline (at least half its events/s, at most twice its latency)."""
    fd, base = intake["median"], medians(base_runs)
    ratios = {key: round(fd[key] / base[key], 2) if base[key] else None
              for key in ("stored_per_s", "p50_ms", "p99_ms", "server_cpu_ms_per_request")}
    within = {"stored_per_s": ratios["stored_per_s"] is not None and ratios["stored_per_s"] >= 0.5,
              "p50_ms": ratios["p50_ms"] is not None and ratios["p50_ms"] <= 2.0,
              "p99_ms": ratios["p99_ms"] is not None and ratios["p99_ms"] <= 2.0}
    log(f"frontdesk ÷ baseline: events/s {ratios['stored_per_s']}, p50 {ratios['p50_ms']}, p99 {ratios['p99_ms']}, "
        f"CPU ms/request {ratios['server_cpu_ms_per_request']}")
    return {"app": "bench/baseline_app.py", "config": intake["config"], "runs": base_runs, "median": base,
            "frontdesk_median": fd, "ratio_frontdesk_to_baseline": ratios, "within_2x": within}


# ---- report --------------------------------------------------------------------------------------


def report_intake(db: str, intake: dict[str, Any], connections: int) -> list[str]:
    parts = [f"\n## {db}: intake (wrk, {connections} connections)\n"]
    rows = [[r["config"], r["seconds"], f"{r['stored_per_s']:.0f}", ms(r["p50_ms"]), ms(r["p99_ms"]),
             r["duplicate"], r["non200"], f"{r['db_events']}/{r['requests_generated']}",
             r["server_cpu_ms_per_request"], fmt_cpu(r["cpu_pct"])]
            for r in intake["sweep"]]
    if rows:
        parts.append("sweep (pick the fastest):\n" + table(
            ["server", "s", "events/s", "p50 ms", "p99 ms", "dup", "non-200", "stored/sent",
             "server CPU ms/req", "CPU % of one core"], rows))
    parts.append(f"\nchosen: {intake['config']}\n" + runs_table(intake["runs"]))
    m = intake["median"]
    cost = m["server_cpu_ms_per_request"]
    parts.append(f"median: {m['stored_per_s']:.0f} events/s, p50 {m['p50_ms']:.1f} ms, "
                 f"p99 {m['p99_ms']:.1f} ms; server CPU {cost:.2f} ms per request "
                 f"(= {1000 * (os.cpu_count() or 1) / cost:.0f} req/s if the server had every core "
                 "to itself and CPU were the only limit)")
    if intake.get("profile"):
        prof = intake["profile"]
        parts.append(f"\npy-spy ({prof['samples']} samples), inclusive share of gunicorn worker time:")
        parts += [f"  {share:5.1f}%  {name}" for name, share in prof["inclusive"][:40]]
    return parts


def runs_table(runs: list[dict[str, Any]]) -> str:
    rows = [[i + 1, r["seconds"], f"{r['stored_per_s']:.0f}", ms(r["p50_ms"]), ms(r["p90_ms"]),
             ms(r["p99_ms"]), r["duplicate"], r["non200"], f"{r['db_events']}/{r['requests_generated']}",
             r["server_cpu_ms_per_request"], fmt_cpu(r["cpu_pct"])]
            for i, r in enumerate(runs)]
    return table(["run", "s", "events/s", "p50 ms", "p90 ms", "p99 ms", "dup", "non-200", "stored/sent",
                  "server CPU ms/req", "CPU % of one core"], rows)


def report_baseline(db: str, base: dict[str, Any]) -> list[str]:
    fd, bl, ratio, ok = base["frontdesk_median"], base["median"], base["ratio_frontdesk_to_baseline"], base["within_2x"]
    yes = lambda flag: "yes" if flag else "NO"  # noqa: E731
    rows = [["events/s", f"{fd['stored_per_s']:.0f}", f"{bl['stored_per_s']:.0f}", ratio["stored_per_s"],
             f"≥ 0.5: {yes(ok['stored_per_s'])}"],
            ["p50 ms", ms(fd["p50_ms"]), ms(bl["p50_ms"]), ratio["p50_ms"], f"≤ 2: {yes(ok['p50_ms'])}"],
            ["p99 ms", ms(fd["p99_ms"]), ms(bl["p99_ms"]), ratio["p99_ms"], f"≤ 2: {yes(ok['p99_ms'])}"],
            ["server CPU ms/request", fd["server_cpu_ms_per_request"], bl["server_cpu_ms_per_request"],
             ratio["server_cpu_ms_per_request"], ""]]
    return [f"\n## {db}: intake against the baseline (verify + one INSERT; {base['config']}, medians)\n",
            table(["", "frontdesk", "baseline", "frontdesk ÷ baseline", "within 2×"], rows),
            "\nbaseline runs:\n" + runs_table(base["runs"])]
