#!/usr/bin/env python
"""frontdesk benchmark: webhook intake and job delivery, on SQLite and PostgreSQL.

    .venv/bin/python bench/run.py            # full run (~30–40 min on 2 cores)
    .venv/bin/python bench/run.py --quick    # a few seconds per step, for smoke-testing

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
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"

import yaml  # noqa: E402  (the project's venv has PyYAML)

# The code under test: a snapshot taken at start (see snapshot_code), so that edits made to the
# working tree while the benchmark runs cannot change or break it half-way. Every child process
# runs with cwd and PYTHONPATH set to it.
CODE = ROOT
samples: Any = None
signature: Any = None

PYTHON = sys.executable
BIN = Path(PYTHON).parent
RULES_NAME = "rules.example.yaml"
PRICE = "price_community_monthly"
SECRET = "whsec_frontdesk_bench"
PG_SERVER = "postgres://postgres@127.0.0.1:5432"
# The fakes' default credentials (frontdesk/fakes/{circle,kit,stripe}.py).
CIRCLE_TOKEN, KIT_KEY, STRIPE_KEY = "circle-test-token", "kit-test-key", "sk_test_frontdesk"
HIGH_LIMIT = "100000/60"
MAX_RATE_FOR_BODIES = 4000  # pre-signed bodies per second of wrk run: far above what 2 cores serve
CLK_TCK = os.sysconf("SC_CLK_TCK")
QUIET_WAIT = 120.0  # longest wait for other work on the machine to calm down before a run


@dataclass
class Plan:
    intake_seconds: int
    sweep_seconds: int
    sweep: list[tuple[int, int]]  # (gunicorn workers, threads); threads 1 = sync worker class
    repeats: int  # full-length intake runs with the chosen configuration (median reported)
    delivery_events: int
    kit_limit_customers: int
    wait_timeout: float
    concurrency_sweep: bool  # extra 100 ms runs at half and double the worker concurrency


FULL = Plan(intake_seconds=12, sweep_seconds=5, sweep=[(2, 1), (4, 1), (8, 1), (2, 4), (4, 4)],
            repeats=3, delivery_events=300, kit_limit_customers=50, wait_timeout=300, concurrency_sweep=True)
QUICK = Plan(intake_seconds=3, sweep_seconds=2, sweep=[(4, 1), (2, 4)], repeats=1, delivery_events=30,
             kit_limit_customers=5, wait_timeout=90, concurrency_sweep=False)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# ---- processes ---------------------------------------------------------------------------------


class Children:
    """Every process this script starts, so cleanup can stop exactly those (by pid / own group)."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, cmd: list[str], env: dict[str, str], log_path: Path,
              stdout: int | None = None) -> subprocess.Popen[bytes]:
        logf = open(log_path, "ab")  # noqa: SIM115  (closed when the process is reaped)
        proc = subprocess.Popen(cmd, env=env, cwd=CODE, stdout=stdout if stdout is not None else logf,
                                stderr=logf, start_new_session=True)
        proc._bench_log = logf  # type: ignore[attr-defined]
        self.procs.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
        if proc.returncode is None and proc.poll() is None:
            try:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                log(f"pid {proc.pid} did not stop in {timeout:.0f} s: killing its process group")
                self._kill_group(proc)
                proc.wait(timeout=10)
            except ProcessLookupError:
                pass
        # Anything left in the child's own session (e.g. gunicorn workers of a killed master).
        self._kill_group(proc, quiet=True)
        proc._bench_log.close()  # type: ignore[attr-defined]
        if proc in self.procs:
            self.procs.remove(proc)

    @staticmethod
    def _kill_group(proc: subprocess.Popen[bytes], quiet: bool = False) -> None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # the group whose id is our child's pid
        except (ProcessLookupError, PermissionError):
            pass

    def stop_all(self) -> None:
        for proc in list(reversed(self.procs)):
            try:
                self.stop(proc, timeout=25)
            except Exception as exc:  # keep cleaning up the rest
                log(f"cleanup of pid {proc.pid} failed: {exc}")


CHILDREN = Children()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http(method: str, url: str, body: Any = None, timeout: float = 30.0) -> Any:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        raw = resp.read()
    return json.loads(raw) if raw else None


def wait_http_ok(url: str, timeout: float, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: the server exited with {proc.returncode} (see its log)")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer 200 within {timeout:.0f} s")


# ---- CPU accounting (/proc) ----------------------------------------------------------------------


def proc_table() -> dict[int, tuple[str, int, float]]:
    """pid → (comm, ppid, CPU seconds used so far by it and its reaped children)."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            raw = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        comm = raw[raw.index("(") + 1: raw.rindex(")")]
        fields = raw[raw.rindex(")") + 2:].split()
        # utime + stime, plus cutime + cstime: the CPU of reaped children (PostgreSQL backends that
        # lived for one connection are charged to the postmaster this way).
        cpu = sum(int(x) for x in fields[11:15]) / CLK_TCK
        table[int(entry)] = (comm, int(fields[1]), cpu)
    return table


def tree_cpu(table: dict[int, tuple[str, int, float]], root: int) -> float:
    total, todo, seen = 0.0, [root], set()
    while todo:
        pid = todo.pop()
        if pid in seen or pid not in table:
            continue
        seen.add(pid)
        total += table[pid][2]
        todo.extend(p for p, (_, ppid, _) in table.items() if ppid == pid)
    return total


def postgres_cpu(table: dict[int, tuple[str, int, float]]) -> float:
    return sum(cpu for comm, _, cpu in table.values() if comm.startswith("postgres"))


def machine_busy() -> tuple[float, float]:
    parts = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = parts[3] + parts[4]
    return (sum(parts) - idle) / CLK_TCK, sum(parts) / CLK_TCK


class CpuMeter:
    """CPU seconds used by named process trees between start() and stop(), as % of one core."""

    def __init__(self, roots: dict[str, int], include_postgres: bool) -> None:
        self.roots, self.include_postgres = roots, include_postgres

    def _snap(self) -> dict[str, float]:
        table = proc_table()
        snap = {name: tree_cpu(table, pid) for name, pid in self.roots.items()}
        if self.include_postgres:
            snap["postgres"] = postgres_cpu(table)
        busy, total = machine_busy()
        snap["_busy"], snap["_total"] = busy, total
        return snap

    def start(self) -> None:
        self.t0, self.before = time.monotonic(), self._snap()

    def stop(self, extra: dict[str, float] | None = None) -> dict[str, float]:
        after, seconds = self._snap(), time.monotonic() - self.t0
        self.elapsed = seconds
        result = {name: round(100 * (after[name] - self.before[name]) / seconds, 1)
                  for name in after if not name.startswith("_")}
        for name, cpu_seconds in (extra or {}).items():
            result[name] = round(100 * cpu_seconds / seconds, 1)
        busy = after["_busy"] - self.before["_busy"]
        total = after["_total"] - self.before["_total"]
        result["machine_busy_pct"] = round(100 * busy / total, 1) if total else 0.0
        # CPU (% of one core) no tracked process accounts for: other users of this machine
        # (and PostgreSQL work for other databases, which is counted under "postgres").
        cores = os.cpu_count() or 1
        tracked = sum(v for k, v in result.items() if k != "machine_busy_pct")
        result["other"] = round(max(0.0, result["machine_busy_pct"] * cores - tracked), 1)
        return result


def background_busy(seconds: float = 1.0) -> float:
    """Percent of the whole machine busy right now (sampled over ``seconds``)."""
    b0, t0 = machine_busy()
    time.sleep(seconds)
    b1, t1 = machine_busy()
    return round(100 * (b1 - b0) / (t1 - t0), 1) if t1 > t0 else 0.0


QUIET_PCT = 12.0


def wait_for_quiet(max_wait: float) -> float:
    """Wait (bounded) until the machine is nearly idle, so other work does not skew a run;
    return the background load seen last (reported with the run)."""
    deadline = time.monotonic() + max_wait
    busy = background_busy()
    warned = False
    while busy > QUIET_PCT and time.monotonic() < deadline:
        if not warned:
            log(f"  machine is {busy:.0f}% busy with other work: waiting up to {max_wait:.0f} s for quiet")
            warned = True
        time.sleep(2)
        busy = background_busy()
    if busy > QUIET_PCT:
        log(f"  still {busy:.0f}% busy with other work: measuring anyway (see 'background' in the results)")
    return busy


# ---- environment ---------------------------------------------------------------------------------


def base_env(database_url: str, var_dir: Path, fakes: dict[str, str], **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("FRONTDESK_", "STRIPE_", "CIRCLE_", "KIT_", "DJANGO_", "PROMETHEUS_"))
           and k not in ("DATABASE_URL",)}
    env.update({
        "DATABASE_URL": database_url,
        "FRONTDESK_VAR_DIR": str(var_dir),
        "FRONTDESK_ENV": "development",
        "FRONTDESK_LOG_LEVEL": "WARNING",
        "STRIPE_WEBHOOK_SECRET": SECRET,
        # Every provider URL and key set, so development mode never falls back to the sandbox.
        "CIRCLE_API_URL": fakes["circle"], "CIRCLE_API_TOKEN": CIRCLE_TOKEN,
        "KIT_API_URL": fakes["kit"], "KIT_API_KEY": KIT_KEY,
        "STRIPE_API_URL": fakes["stripe"], "STRIPE_API_KEY": STRIPE_KEY,
        "KIT_RATE_LIMIT": HIGH_LIMIT, "CIRCLE_RATE_LIMIT": HIGH_LIMIT,
        # The intake's per-address throttle (default 3000/60 per web process) would see all of
        # wrk as one client at 127.0.0.1; Stripe sends from many addresses. Keep the throttle
        # (and its cost) in the path, but high enough never to answer 429.
        "FRONTDESK_INTAKE_RATE_LIMIT": "1000000/60",
        "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": str(CODE),
    })
    env.update(extra)
    return env


def dbtool(env: dict[str, str], *args: str, timeout: float = 120.0) -> dict[str, Any]:
    result = subprocess.run([PYTHON, str(BENCH / "dbtool.py"), *args], env=env, cwd=CODE,
                            capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise RuntimeError(f"dbtool {' '.join(args)} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def psql(sql: str) -> None:
    subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-v", "ON_ERROR_STOP=1",
                    "-q", "-c", sql], check=True, timeout=60, capture_output=True)


def fake_seed(rules_file: Path) -> dict[str, Any]:
    """Every Circle and Kit target the rules name (as frontdesk/ops/sandbox.py seed() does)."""
    rules = yaml.safe_load(rules_file.read_text())
    circle: dict[str, list[dict[str, Any]]] = {"spaces": [], "space_groups": [], "access_groups": [],
                                               "member_tags": []}
    kit: dict[str, list[dict[str, Any]]] = {"tags": [], "sequences": [], "custom_fields": []}
    for name, spec in rules["entitlements"].items():
        c, k = spec.get("circle") or {}, spec.get("kit") or {}
        for kind in circle:
            circle[kind] += [{"id": i, "name": f"{name} {kind} {i}"} for i in c.get(kind, [])]
        kit["tags"] += [{"id": i, "name": f"{name} tag {i}"} for i in k.get("tags", [])]
        kit["sequences"] += [{"id": i, "name": f"{name} sequence {i}"} for i in k.get("sequences", [])]
        kit["custom_fields"] += [{"key": key, "label": key.replace("_", " ").title()}
                                 for key in (k.get("fields") or {})]
    seen: set[str] = set()
    kit["custom_fields"] = [f for f in kit["custom_fields"] if not (f["key"] in seen or seen.add(f["key"]))]
    return {"circle": circle, "kit": kit}


def start_fakes(tmp: Path) -> tuple[subprocess.Popen[bytes], dict[str, str]]:
    seed_file = tmp / "fake-seed.json"
    seed_file.write_text(json.dumps(fake_seed(CODE / RULES_NAME)))
    proc = CHILDREN.start([PYTHON, "-m", "frontdesk.fakes", "--circle-port", "0", "--kit-port", "0",
                           "--stripe-port", "0", "--seed", str(seed_file)],
                          env={**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(CODE)},
                          log_path=tmp / "fakes.log",
                          stdout=subprocess.PIPE)
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], 30)
    if not ready:
        raise RuntimeError("the fakes did not print their URLs within 30 s")
    urls = json.loads(proc.stdout.readline())
    return proc, urls


# ---- intake --------------------------------------------------------------------------------------


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
            session = samples.checkout_session(f"intake{stamp}-{i}@example.com", PRICE)
            body = json.dumps(samples.event("checkout.session.completed", session))
            header = signature.header(body.encode(), [SECRET])
            files[i % threads].write(f"{header}\t{body}\n")
    finally:
        for f in files:
            f.close()
    return time.perf_counter() - started


def gunicorn_cmd(port: int, workers: int, threads: int) -> list[str]:
    cmd = [str(BIN / "gunicorn"), "frontdesk.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
           "--log-level", "warning", "--graceful-timeout", "5"]
    if threads > 1:
        cmd += ["--threads", str(threads)]  # gunicorn switches to the gthread worker class
    return cmd


def config_name(workers: int, threads: int) -> str:
    return f"{workers} sync workers" if threads == 1 else f"{workers} workers × {threads} threads (gthread)"


def intake_run(env: dict[str, str], tmp: Path, workers: int, threads: int, seconds: int,
               connections: int, wrk_threads: int, label: str, db_vendor: str,
               profile: Path | None = None) -> dict[str, Any]:
    dbtool(env, "reset")
    bodies = min(seconds * MAX_RATE_FOR_BODIES, 80_000)
    gen_seconds = write_bodies(tmp / "bodies", bodies, wrk_threads)
    port = free_port()
    server = CHILDREN.start(gunicorn_cmd(port, workers, threads), env, tmp / f"gunicorn-{label}.log")
    try:
        wait_http_ok(f"http://127.0.0.1:{port}/healthz", 30, server)
        time.sleep(0.5)  # let every worker finish booting
        # Warm every worker up (gunicorn imports the URLconf and views on each worker's first
        # request), with a request that writes nothing.
        subprocess.run(["wrk", "-t1", "-c8", "-d1s", f"http://127.0.0.1:{port}/healthz"], cwd=ROOT,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30)
        background = wait_for_quiet(QUIET_WAIT)
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
    db = dbtool(env, "intake-stats")
    duration = w["duration_us"] / 1e6
    return {
        "label": label, "config": config_name(workers, threads), "workers": workers, "threads": threads,
        "seconds": round(duration, 2), "connections": connections,
        "requests_per_s": round(w["responses"] / duration, 1),
        "stored_per_s": round(w["stored"] / duration, 1),
        "p50_ms": w["latency_us"]["p50"] / 1000, "p90_ms": w["latency_us"]["p90"] / 1000,
        "p99_ms": w["latency_us"]["p99"] / 1000, "p999_ms": w["latency_us"]["p999"] / 1000,
        "max_ms": w["latency_us"]["max"] / 1000,
        "responses": w["responses"], "requests_generated": w["generated"], "stored": w["stored"],
        "duplicate": w["duplicate"], "ignored": w["ignored"], "other": w["other"], "non200": w["non200"],
        "socket_errors": w["errors"], "bodies": w["bodies"], "body_reuse": w["wraps"] > 0,
        "db_events": db["events"], "db_distinct_event_ids": db["distinct_event_ids"], "db_jobs": db["jobs"],
        "db_intake_log": db["intake_log"], "db_intake_reasons": db["intake_log_reasons"],
        "view_ms_p50": db["view_ms_p50"], "view_ms_p99": db["view_ms_p99"],
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


def intake_phase(env: dict[str, str], tmp: Path, plan: Plan, args: argparse.Namespace,
                 db_vendor: str, server: tuple[int, int] | None = None) -> dict[str, Any]:
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
    runs = []
    for i in range(plan.repeats):
        log(f"intake: {config_name(workers, threads)}, {plan.intake_seconds} s, run {i + 1}/{plan.repeats}")
        r = intake_run(env, tmp, workers, threads, plan.intake_seconds, args.connections, args.wrk_threads,
                       f"main-{i}", db_vendor)
        log(f"  {r['stored_per_s']:.0f} events/s stored, p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms, "
            f"duplicates {r['duplicate']}, stored in DB {r['db_events']} of {r['requests_generated']} sent")
        runs.append(r)
    median = {key: statistics.median(r[key] for r in runs)
              for key in ("stored_per_s", "requests_per_s", "p50_ms", "p90_ms", "p99_ms", "p999_ms")}
    result: dict[str, Any] = {"sweep": sweep, "runs": runs, "median": median,
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
    return result


# ---- delivery ------------------------------------------------------------------------------------


def fake_calls(url: str) -> list[dict[str, Any]]:
    return [c for c in http("GET", f"{url}/_fake/calls", timeout=60)["calls"]]


def prepare_fakes(fakes: dict[str, str], latency: float, high_limits: bool) -> None:
    for name, url in fakes.items():
        http("POST", f"{url}/_fake/reset")  # back to the seed, no calls, default config
        if high_limits and name in ("circle", "kit"):
            http("POST", f"{url}/_fake/config", {"rate_limit": [1_000_000, 60]})
        if latency and name in ("circle", "kit"):
            http("POST", f"{url}/_fake/faults", {"latency": latency})


def max_in_window(times: list[float], window: float) -> int:
    best, start = 0, 0
    for end in range(len(times)):
        while times[end] - times[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


def delivery_run(env: dict[str, str], tmp: Path, fakes: dict[str, str], fakes_pid: int, *, label: str,
                 events: int, latency: float, concurrency: int, high_limits: bool, timeout: float,
                 db_vendor: str) -> dict[str, Any]:
    dbtool(env, "reset")
    prepare_fakes(fakes, latency, high_limits)
    enq = dbtool(env, "enqueue", str(events), PRICE, timeout=300)
    if enq["outcomes"].get("stored") != events:
        raise RuntimeError(f"enqueue did not store every event: {enq}")
    background = wait_for_quiet(QUIET_WAIT)
    started = time.time()
    worker = CHILDREN.start([str(BIN / "frontdesk"), "worker", "--concurrency", str(concurrency)], env,
                            tmp / f"worker-{label}.log")
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
        "status_counts": {n: _count(c["status"] for c in cs) for n, cs in calls.items()},
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


def _count(values: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for v in values:
        counts[str(v)] = counts.get(str(v), 0) + 1
    return counts


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


# ---- report --------------------------------------------------------------------------------------


def fmt_cpu(cpu: dict[str, float]) -> str:
    """'gunicorn 113, postgres 60, wrk 6, other 10 (machine 63%)': % of one core per process group."""
    names = [k for k in cpu if k not in ("machine_busy_pct",)]
    return ", ".join(f"{k} {cpu[k]:.0f}" for k in names) + f" (machine {cpu['machine_busy_pct']:.0f}%)"


def ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def table(headers: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def report(results: dict[str, Any]) -> str:
    parts = [f"machine: {results['machine']}", f"code: {results['code']}"]
    for db, res in results["databases"].items():
        if "what_if" in res:
            parts.append(f"\n# {db}: {res['what_if']} — NOT the shipped configuration")
        if "intake" in res:
            intake = res["intake"]
            parts.append(f"\n## {db}: intake (wrk, {results['connections']} connections)\n")
            rows = [[r["config"], r["seconds"], f"{r['stored_per_s']:.0f}", ms(r["p50_ms"]), ms(r["p99_ms"]),
                     r["duplicate"], r["non200"], f"{r['db_events']}/{r['requests_generated']}",
                     r["server_cpu_ms_per_request"], fmt_cpu(r["cpu_pct"])]
                    for r in intake["sweep"]]
            if rows:
                parts.append("sweep (pick the fastest):\n" + table(
                    ["server", "s", "events/s", "p50 ms", "p99 ms", "dup", "non-200", "stored/sent",
                     "server CPU ms/req", "CPU % of one core"], rows))
            rows = [[i + 1, r["seconds"], f"{r['stored_per_s']:.0f}", ms(r["p50_ms"]), ms(r["p90_ms"]),
                     ms(r["p99_ms"]), r["duplicate"], r["non200"], f"{r['db_events']}/{r['requests_generated']}",
                     r["server_cpu_ms_per_request"], fmt_cpu(r["cpu_pct"])]
                    for i, r in enumerate(intake["runs"])]
            parts.append(f"\nchosen: {intake['config']}\n" + table(
                ["run", "s", "events/s", "p50 ms", "p90 ms", "p99 ms", "dup", "non-200", "stored/sent",
                 "server CPU ms/req", "CPU % of one core"], rows))
            m = intake["median"]
            cost = statistics.median(r["server_cpu_ms_per_request"] for r in intake["runs"])
            parts.append(f"median: {m['stored_per_s']:.0f} events/s, p50 {m['p50_ms']:.1f} ms, "
                         f"p99 {m['p99_ms']:.1f} ms; server CPU {cost:.2f} ms per request "
                         f"(= {1000 * (os.cpu_count() or 1) / cost:.0f} req/s if the server had every core "
                         "to itself and CPU were the only limit)")
            if intake.get("profile"):
                prof = intake["profile"]
                parts.append(f"\npy-spy ({prof['samples']} samples), inclusive share of gunicorn worker time:")
                parts += [f"  {share:5.1f}%  {name}" for name, share in prof["inclusive"][:40]]
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
    return "\n".join(parts)


# ---- main ----------------------------------------------------------------------------------------


def machine() -> str:
    mem_kb = int(next(line for line in Path("/proc/meminfo").read_text().splitlines()
                      if line.startswith("MemTotal")).split()[1])
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), "?")
    return (f"{os.cpu_count()} CPUs ({cpu}), {mem_kb / 1024 / 1024:.1f} GiB RAM, {platform.system()} "
            f"{platform.release()}, Python {platform.python_version()}")


def snapshot_code(tmp: Path, which: str) -> str:
    """Copy the code under test into ``tmp/code`` and import the event helpers from there.

    ``head``: the last commit (``git archive HEAD``, read-only for the repository): a consistent,
    named state. ``worktree``: the files as they are now, uncommitted edits included.
    """
    global CODE, samples, signature
    target = tmp / "code"
    target.mkdir()
    if which == "head":
        archive = subprocess.run(["git", "archive", "--format=tar", "HEAD", "frontdesk", RULES_NAME], cwd=ROOT,
                                 capture_output=True, check=True, timeout=60).stdout
        subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True, timeout=60)
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                             timeout=10).stdout.strip()
        version = f"commit {sha[:12]} (committed code only)"
    else:
        shutil.copytree(ROOT / "frontdesk", target / "frontdesk", ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copy2(ROOT / RULES_NAME, target / RULES_NAME)
        version = f"working tree at {time.strftime('%H:%M:%S')}: {code_version()}"
    CODE = target
    sys.path.insert(0, str(CODE))
    from frontdesk.intake import samples as _samples, signature as _signature  # no Django needed

    samples, signature = _samples, _signature
    if not Path(_samples.__file__).is_relative_to(CODE):
        raise RuntimeError(f"imported {_samples.__file__}, not the snapshot in {CODE}")
    return version


def code_version() -> str:
    """Read-only: the commit and whether the tree has local changes."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True,
                               timeout=10).stdout.splitlines()
        return f"{head}" + (f" + {len(dirty)} changed/untracked paths" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


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


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="a few seconds per step (smoke test)")
    p.add_argument("--db", choices=("sqlite", "postgres", "both"), default="both")
    p.add_argument("--only", choices=("intake", "delivery", "all"), default="all")
    p.add_argument("--connections", type=int, default=32, help="wrk connections (default 32)")
    p.add_argument("--wrk-threads", type=int, default=1,
                   help="wrk threads (default 1: one thread keeps up and leaves the cores to the server)")
    p.add_argument("--server", type=lambda s: tuple(int(x) for x in s.split("x")), default=None,
                   metavar="WORKERSxTHREADS", help="skip the sweep and use this gunicorn setup, e.g. 4x1")
    p.add_argument("--repeats", type=int, default=None, help="full-length intake runs to take the median of (default 3)")
    p.add_argument("--events", type=int, default=None, help="paid checkouts per delivery run (default 300; quick 30)")
    p.add_argument("--concurrency", type=int, default=8, help="frontdesk worker --concurrency (default 8)")
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


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    plan = QUICK if args.quick else FULL
    if args.events:
        plan.delivery_events = args.events
    if args.repeats:
        plan.repeats = args.repeats
    global QUIET_WAIT
    QUIET_WAIT = 10.0 if args.quick else args.quiet_wait

    def on_signal(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    tmp = Path(tempfile.mkdtemp(prefix="frontdesk-bench-"))
    pg_db = f"frontdesk_bench_{os.getpid()}"
    pg_created = False
    results: dict[str, Any] = {"machine": machine(), "code": "?", "quick": args.quick, "connections": args.connections,
                               "wrk_threads": args.wrk_threads, "concurrency": args.concurrency,
                               "started": time.strftime("%Y-%m-%d %H:%M:%S"), "databases": {}}
    code = 0
    try:
        ensure_wrk()
        log(f"temporary directory {tmp}; {results['machine']}")
        results["code"] = snapshot_code(tmp, args.code)
        log(f"code under test: {results['code']}, copied to {CODE}")
        fakes_proc, fakes = start_fakes(tmp)
        log(f"fakes: {fakes}")
        dbs = ["sqlite", "postgres"] if args.db == "both" else [args.db]
        for db in dbs:
            if db == "sqlite":
                url, vendor = f"sqlite:///{tmp / 'var' / 'frontdesk.sqlite3'}", "sqlite"
            else:
                psql(f"DROP DATABASE IF EXISTS {pg_db}")
                psql(f"CREATE DATABASE {pg_db}")
                pg_created = True
                url, vendor = f"{PG_SERVER}/{pg_db}", "postgresql"
            env = base_env(url, tmp / "var", fakes)
            log(f"== {db}: migrate and load {RULES_NAME}")
            dbtool(env, "setup", str(CODE / RULES_NAME), timeout=300)
            res: dict[str, Any] = {}
            results["databases"][db] = res
            if args.only in ("intake", "all"):
                res["intake"] = intake_phase(env, tmp, plan, args, vendor)
            if args.only in ("delivery", "all"):
                res["delivery"] = delivery_phase(env, tmp, fakes, fakes_proc.pid, plan, args, vendor)
            res["diagnostics"] = diagnostics(env, fakes, plan)
            for what_if in args.what_if:
                module, description = WHAT_IFS[what_if]
                log(f"== {db}: WHAT-IF {what_if}: {description} (bench/whatif/{module}.py; NOT shipped)")
                wenv = {**env, "DJANGO_SETTINGS_MODULE": module,
                        "PYTHONPATH": f"{CODE}{os.pathsep}{BENCH / 'whatif'}"}
                wres: dict[str, Any] = {"what_if": description}
                results["databases"][f"{db} (what-if {what_if})"] = wres
                if what_if == "conn-per-request" and "intake" in res:
                    same = (res["intake"]["workers"], res["intake"]["threads"])
                    wres["intake"] = intake_phase(wenv, tmp, plan, args, vendor, server=same)
                if what_if == "shared-ssl" and "delivery" in res:
                    wres["delivery"] = delivery_phase(wenv, tmp, fakes, fakes_proc.pid, plan, args, vendor,
                                                      kit_limit=False)
                    wres["diagnostics"] = diagnostics(wenv, fakes, plan)
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
        if pg_created:
            try:
                psql(f"DROP DATABASE IF EXISTS {pg_db} WITH (FORCE)")
            except Exception as exc:
                log(f"could not drop database {pg_db}: {exc}")
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            log(f"kept {tmp}")
    if results["databases"]:
        out_dir = BENCH / "results"
        out_dir.mkdir(exist_ok=True)
        name = time.strftime("%Y%m%d-%H%M%S") + ("-quick" if args.quick else "") + ".json"
        for db in results["databases"].values():
            for r in [*db.get("intake", {}).get("sweep", []), *db.get("intake", {}).get("runs", [])]:
                r.pop("wrk_output", None) if args.quick else None
        (out_dir / name).write_text(json.dumps(results, indent=2, default=str))
        print("\n" + report(results))
        print(f"\nraw results: {out_dir / name}")
    return code


if __name__ == "__main__":
    sys.exit(main())
