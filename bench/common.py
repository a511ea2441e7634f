"""Shared by bench/run.py and its parts (intake, e2e, backlog, memory): child processes, HTTP,
CPU and memory accounting from /proc, environments, databases, the provider fakes, the
snapshot of the code under test, and report formatting.

Module-level state that main() sets once (CODE, samples, signature, QUIET_WAIT) is read as
``common.NAME`` by the other modules, so they see the value set at start.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from http.client import HTTPException
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
    e2e_seconds: float  # webhooks sent at the e2e rate for the end-to-end latency run
    memory_minutes: float  # the worker-memory run (same traffic, continued)
    memory_interval: float  # seconds between RSS samples
    backlog_jobs: int  # Kit jobs queued before the backlog run's worker starts


FULL = Plan(intake_seconds=12, sweep_seconds=5, sweep=[(2, 1), (4, 1), (2, 4), (2, 8), (4, 4)],
            repeats=3, delivery_events=300, kit_limit_customers=50, wait_timeout=300, concurrency_sweep=True,
            e2e_seconds=60, memory_minutes=60, memory_interval=30, backlog_jobs=10_000)
QUICK = Plan(intake_seconds=3, sweep_seconds=2, sweep=[(4, 1), (2, 4)], repeats=1, delivery_events=30,
             kit_limit_customers=5, wait_timeout=90, concurrency_sweep=False,
             e2e_seconds=10, memory_minutes=1, memory_interval=5, backlog_jobs=150)


def log(message: str) -> None:
    # One write per line: the backlog and memory runs log from two threads at once.
    sys.stdout.write(f"[{time.strftime('%H:%M:%S')}] {message}\n")
    sys.stdout.flush()


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
        except (urllib.error.URLError, ConnectionError, TimeoutError, HTTPException):
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


def wait_for_quiet(max_wait: float | None = None) -> float:
    """Wait (bounded, by default QUIET_WAIT) until the machine is nearly idle, so other work does
    not skew a run; return the background load seen last (reported with the run)."""
    max_wait = QUIET_WAIT if max_wait is None else max_wait
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


def start_fakes(tmp: Path, rules_file: Path | None = None,
                name: str = "fakes") -> tuple[subprocess.Popen[bytes], dict[str, str]]:
    """One process with the three fakes, seeded with every target ``rules_file`` names."""
    seed_file = tmp / f"{name}-seed.json"
    seed_file.write_text(json.dumps(fake_seed(rules_file or CODE / RULES_NAME)))
    proc = CHILDREN.start([PYTHON, "-m", "frontdesk.fakes", "--circle-port", "0", "--kit-port", "0",
                           "--stripe-port", "0", "--seed", str(seed_file)],
                          env={**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(CODE)},
                          log_path=tmp / f"{name}.log",
                          stdout=subprocess.PIPE)
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], 30)
    if not ready:
        raise RuntimeError("the fakes did not print their URLs within 30 s")
    urls = json.loads(proc.stdout.readline())
    return proc, urls


class Databases:
    """The databases this run creates: SQLite files in the temporary directory, or PostgreSQL
    databases ``frontdesk_bench_<pid>[_<name>]``, dropped by drop_all() at the end."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.created: list[str] = []

    def create(self, db: str, name: str = "") -> tuple[str, str]:
        """A fresh empty database; returns (DATABASE_URL, Django vendor)."""
        if db == "sqlite":
            directory = self.tmp / "var"
            directory.mkdir(parents=True, exist_ok=True)
            return f"sqlite:///{directory / ((name or 'frontdesk') + '.sqlite3')}", "sqlite"
        pg_db = f"frontdesk_bench_{os.getpid()}" + (f"_{name}" if name else "")
        psql(f"DROP DATABASE IF EXISTS {pg_db}")
        psql(f"CREATE DATABASE {pg_db}")
        self.created.append(pg_db)
        return f"{PG_SERVER}/{pg_db}", "postgresql"

    def drop_all(self) -> None:
        for pg_db in self.created:
            try:
                psql(f"DROP DATABASE IF EXISTS {pg_db} WITH (FORCE)")
            except Exception as exc:  # keep dropping the others
                log(f"could not drop database {pg_db}: {exc}")
        self.created.clear()


# ---- the servers under test ----------------------------------------------------------------------


def gunicorn_cmd(port: int, workers: int, threads: int, app: str = "frontdesk.wsgi",
                 pythonpath: Path | None = None) -> list[str]:
    cmd = [str(BIN / "gunicorn"), app, "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
           "--log-level", "warning", "--graceful-timeout", "5"]
    if pythonpath:
        cmd += ["--pythonpath", str(pythonpath)]
    if threads > 1:
        cmd += ["--threads", str(threads)]  # gunicorn switches to the gthread worker class
    return cmd


def config_name(workers: int, threads: int) -> str:
    return f"{workers} sync workers" if threads == 1 else f"{workers} workers × {threads} threads (gthread)"


def start_gunicorn(env: dict[str, str], tmp: Path, label: str, workers: int, threads: int,
                   app: str = "frontdesk.wsgi", pythonpath: Path | None = None) -> tuple[subprocess.Popen[bytes], int]:
    """A gunicorn on a free port, answering ``GET /healthz``; returns (process, port)."""
    port = free_port()
    server = CHILDREN.start(gunicorn_cmd(port, workers, threads, app, pythonpath), env, tmp / f"gunicorn-{label}.log")
    try:
        wait_http_ok(f"http://127.0.0.1:{port}/healthz", 30, server)
    except BaseException:
        CHILDREN.stop(server)
        raise
    return server, port


def start_worker(env: dict[str, str], tmp: Path, label: str, concurrency: int) -> subprocess.Popen[bytes]:
    return CHILDREN.start([str(BIN / "frontdesk"), "worker", "--concurrency", str(concurrency)], env,
                          tmp / f"worker-{label}.log")


# ---- the fakes' call logs ------------------------------------------------------------------------


def fake_calls(url: str) -> list[dict[str, Any]]:
    return [c for c in http("GET", f"{url}/_fake/calls", timeout=60)["calls"]]


def take_fake_calls(url: str) -> list[dict[str, Any]]:
    """The fake's call log, then cleared, so that a long run does not grow it without bound.
    A call logged between the two requests is lost; callers must tolerate that."""
    with urllib.request.urlopen(f"{url}/_fake/calls", timeout=60) as resp:
        raw = resp.read()
    http("DELETE", f"{url}/_fake/calls")  # before parsing: the shorter the gap, the fewer lost
    return list(json.loads(raw)["calls"])


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


def count_values(values: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for v in values:
        counts[str(v)] = counts.get(str(v), 0) + 1
    return counts


def percentiles(values: list[float], qs: tuple[float, ...] = (50, 95, 99)) -> dict[str, float | None]:
    """Nearest-rank percentiles, plus mean and max, rounded to 0.1 (``None`` when empty)."""
    ordered = sorted(values)
    result: dict[str, float | None] = {}
    for q in qs:
        index = min(len(ordered) - 1, max(0, -(-len(ordered) * q // 100) - 1)) if ordered else 0
        result[f"p{q:g}"] = round(ordered[int(index)], 1) if ordered else None
    result["mean"] = round(sum(ordered) / len(ordered), 1) if ordered else None
    result["max"] = round(ordered[-1], 1) if ordered else None
    return result


# ---- code under test -----------------------------------------------------------------------------


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


# ---- report formatting ---------------------------------------------------------------------------


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
