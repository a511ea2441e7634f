"""Running a chaos scenario against real processes: the provider fakes (in this process),
gunicorn web processes, `frontdesk worker` processes, a Stripe-like sender, and the chaos
itself (SIGKILLed workers, a PostgreSQL restart, random provider faults and full outages).

The caller has configured Django (bench/chaos.py does; under pytest, pytest-django has), so
the queue can be watched through the ORM. Every process started here is stopped by its pid
(and, for gunicorn, its own process group) in :meth:`Children.stop_all`.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from frontdesk.fakes.base import FakeServer
from frontdesk.fakes.circle import FakeCircle
from frontdesk.fakes.kit import FakeKit
from frontdesk.fakes.stripe import FakeStripe
from frontdesk.intake import signature

from .scenario import Scenario

from common import wait_http_ok  # noqa: E402  (bench/ is on sys.path: bench/chaos.py, tests/test_chaos.py)

PYTHON = sys.executable
ROOT = Path(__file__).resolve().parents[2]
CIRCLE_TOKEN, KIT_KEY, STRIPE_KEY = "circle-test-token", "kit-test-key", "sk_test_frontdesk"
PENDING = ("queued", "retrying", "running")

# The random faults, as shares of all faulted calls: 5xx, 429, timeouts (no answer, nothing
# done) and commit-then-timeout (done, but the answer is lost: the nastiest for idempotency).
FAULT_MIX: list[tuple[dict[str, Any], float]] = [
    ({"status": 503}, 0.25), ({"status": 500}, 0.15), ({"status": 502}, 0.10),
    ({"status": 429}, 0.20), ({"timeout": True}, 0.15), ({"commit_then_timeout": True}, 0.15),
]
# How each provider is "fully down" during its outage window.
OUTAGES: dict[str, dict[str, Any]] = {
    "circle": {"status": 503}, "kit": {"reset_connection": True}, "stripe": {"timeout": True},
}


def timing_env(lease: float = 10.0, **overrides: str) -> dict[str, str]:
    """Fast retry settings so that a run takes minutes, not days; printed with the results.
    Retry *ages* stay at their 3-day default: nothing may end in review for lack of time."""
    return {**{
        "FRONTDESK_RETRY_BASE": "0.2", "FRONTDESK_RETRY_CAP": "5",
        "FRONTDESK_LEASE_SECONDS": str(lease), "FRONTDESK_CIRCUIT_COOLDOWN": "1",
        "FRONTDESK_CIRCUIT_MAX_COOLDOWN": "10", "FRONTDESK_HTTP_TIMEOUT": "2",
        "FRONTDESK_WORKER_POLL": "0.2",
        "CIRCLE_RATE_LIMIT": "100000/60", "KIT_RATE_LIMIT": "100000/60", "STRIPE_RATE_LIMIT": "100000/60",
        "CIRCLE_RATE_LIMIT_WAIT": "0.25", "KIT_RATE_LIMIT_WAIT": "0.25", "STRIPE_RATE_LIMIT_WAIT": "0.25",
    }, **overrides}


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# ---- processes -----------------------------------------------------------------------------


class Children:
    """Every process this run starts, so cleanup stops exactly those."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, name: str, cmd: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        logf = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115  (closed in stop)
        proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=logf, stderr=logf, start_new_session=True)
        proc._chaos_log = logf  # type: ignore[attr-defined]
        self.procs.append(proc)
        return proc

    def kill(self, proc: subprocess.Popen[bytes]) -> None:
        """SIGKILL, the way a crash or the OOM killer ends a process."""
        try:
            os.kill(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=30)
        self.forget(proc)

    def stop(self, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
        if proc.poll() is None:
            try:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                log(f"pid {proc.pid} did not stop in {timeout:.0f} s: killing its process group")
            except ProcessLookupError:
                pass
        try:  # what is left of the child's own session (gunicorn's worker of a killed master)
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        self.forget(proc)

    def forget(self, proc: subprocess.Popen[bytes]) -> None:
        proc._chaos_log.close()  # type: ignore[attr-defined]
        if proc in self.procs:
            self.procs.remove(proc)

    def stop_all(self) -> None:
        for proc in list(reversed(self.procs)):
            try:
                self.stop(proc, timeout=25)
            except Exception as exc:  # keep cleaning up the rest
                log(f"cleanup of pid {proc.pid} failed: {exc}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def child_env(base: dict[str, str], fakes: dict[str, FakeServer], secret: str) -> dict[str, str]:
    """The environment of web and worker processes: the database and settings in ``base``,
    every provider URL and key pointing at the fakes (so development never means sandbox)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("FRONTDESK_", "STRIPE_", "CIRCLE_", "KIT_", "HUBSPOT_", "DJANGO_", "PROMETHEUS_"))
           and k != "DATABASE_URL"}
    env.update({
        "FRONTDESK_ENV": "development", "FRONTDESK_LOG_FORMAT": "json", "PYTHONUNBUFFERED": "1",
        "STRIPE_WEBHOOK_SECRET": secret,
        "CIRCLE_API_URL": fakes["circle"].url, "CIRCLE_API_TOKEN": CIRCLE_TOKEN,
        "KIT_API_URL": fakes["kit"].url, "KIT_API_KEY": KIT_KEY,
        "STRIPE_API_URL": fakes["stripe"].url, "STRIPE_API_KEY": STRIPE_KEY,
    })
    env.update(base)
    return env


# ---- fakes ---------------------------------------------------------------------------------


def start_fakes(scenario: Scenario) -> dict[str, FakeServer]:
    """Circle, Kit and Stripe fakes in this process, with no rate limits of their own (the
    random 429s stand for them), seeded with the rules' targets and Stripe's current objects."""
    seed = scenario.circle_kit_seed()
    return {
        "circle": FakeCircle(rate_limit=None, seed=seed["circle"]).start(),
        "kit": FakeKit(rate_limit=None, seed=seed["kit"]).start(),
        "stripe": FakeStripe(rate_limit=None, seed=scenario.stripe_seed()).start(),
    }


def random_fault_rules(rate: float) -> list[dict[str, Any]]:
    """``rate`` of all calls faulted, split as FAULT_MIX; rules are tried in order, so each
    one's probability is conditional on the earlier ones having spared the call."""
    rules, spared = [], 1.0
    for behaviour, share in FAULT_MIX:
        p = rate * share
        if p <= 0:
            continue
        rules.append({**behaviour, "probability": min(1.0, p / spared)})
        spared -= p
    return rules


def set_faults(fake: FakeServer, rate: float, outage: dict[str, Any] | None = None) -> None:
    fake.clear_faults()
    if outage is not None:
        fake.fail(**outage)  # first: while it lasts it catches every call
    for rule in random_fault_rules(rate):
        fake.fail(**rule)


# ---- the sender ----------------------------------------------------------------------------


@dataclass
class SendStats:
    accepted: set[str] = field(default_factory=set)  # event ids that got a 2xx at least once
    gave_up: set[str] = field(default_factory=set)
    answers: Counter[str] = field(default_factory=Counter)  # "200 stored", "503", "ConnectionRefusedError"…
    attempts: int = 0
    done: int = 0  # deliveries finished (2xx or given up)
    non_2xx: list[tuple[float, str]] = field(default_factory=list)  # (time, answer)
    finished_at: float | None = None


class Sender:
    """Delivers events like Stripe: signed at each attempt, to any web process, retried with
    backoff until a 2xx (bounded by ``give_up_after`` seconds per delivery)."""

    def __init__(self, deliveries: list[dict[str, Any]], ports: list[int], secret: str, threads: int,
                 *, give_up_after: float = 900.0, seed: int = 1) -> None:
        self.bodies = {e["id"]: json.dumps(e).encode() for e in deliveries}
        self.order = [e["id"] for e in deliveries]
        self.ports, self.secret, self.threads = ports, secret, threads
        self.give_up_after = give_up_after
        self.stats = SendStats()
        self.lock = threading.Lock()
        self.next = 0
        self.rng = random.Random(seed)
        self._threads: list[threading.Thread] = []
        self.stopping = threading.Event()

    @property
    def total(self) -> int:
        return len(self.order)

    def start(self) -> None:
        self._threads = [threading.Thread(target=self._loop, name=f"sender-{i}", daemon=True)
                         for i in range(self.threads)]
        for t in self._threads:
            t.start()

    def join(self) -> None:
        for t in self._threads:
            t.join()
        self.stats.finished_at = time.monotonic()

    def _take(self) -> str | None:
        with self.lock:
            if self.next >= len(self.order):
                return None
            self.next += 1
            return self.order[self.next - 1]

    def _loop(self) -> None:
        while not self.stopping.is_set():
            event_id = self._take()
            if event_id is None:
                return
            self._deliver(event_id, self.bodies[event_id])
            with self.lock:
                self.stats.done += 1

    def _post(self, port: int, body: bytes) -> tuple[str, bool]:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
        try:
            conn.request("POST", "/webhooks/stripe", body=body, headers={
                "Content-Type": "application/json", "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
                "Stripe-Signature": signature.header(body, [self.secret])})
            resp = conn.getresponse()
            raw = resp.read()
        finally:
            conn.close()
        if 200 <= resp.status < 300:
            try:
                outcome = json.loads(raw).get("status", "")
            except ValueError:
                outcome = "?"
            return f"{resp.status} {outcome}", True
        return str(resp.status), False

    def _deliver(self, event_id: str, body: bytes) -> None:
        started = time.monotonic()
        attempt = 0
        while not self.stopping.is_set():
            with self.lock:
                port = self.rng.choice(self.ports)
            try:
                answer, ok = self._post(port, body)
            except (OSError, http.client.HTTPException) as exc:
                answer, ok = type(exc).__name__, False
            with self.lock:
                self.stats.attempts += 1
                self.stats.answers[answer] += 1
                if ok:
                    self.stats.accepted.add(event_id)
                else:
                    self.stats.non_2xx.append((time.monotonic(), answer))
            if ok:
                return
            if time.monotonic() - started > self.give_up_after:
                with self.lock:
                    self.stats.gave_up.add(event_id)
                return
            # Stripe backs off over hours; the same shape, compressed to seconds.
            time.sleep(min(5.0, 0.25 * 2 ** attempt) * random.uniform(0.5, 1.0))
            attempt += 1


# ---- the run -------------------------------------------------------------------------------


@dataclass
class Plan:
    web: int = 2
    workers: int = 3
    concurrency: int = 4
    senders: int = 8
    fault_rate: float = 0.2
    outage_seconds: float = 120.0
    outage_start: float = 20.0  # seconds after delivery starts; providers staggered after it
    kills: int | None = None  # None: one every `kill_every` seconds until the chaos ends
    kill_every: tuple[float, float] = (5.0, 15.0)
    kill_after_share: float = 0.0  # the first kill waits until this share of deliveries is done
    db_restart: bool = True
    db_restart_at_share: float = 0.5
    db_restart_command: str | None = None  # default: pg_ctlcluster … main restart (shared server)
    drain_timeout: float = 900.0
    seed: int = 1


@dataclass
class Timeline:
    started: float = 0.0
    chaos_ended: float = 0.0
    drained: float | None = None
    kills: list[tuple[float, str]] = field(default_factory=list)
    outages: dict[str, tuple[float, float]] = field(default_factory=dict)
    db_restart: str = "not planned"
    db_window: tuple[float, float] | None = None
    notes: list[str] = field(default_factory=list)
    worker_exits: list[str] = field(default_factory=list)


def queue_counts() -> dict[str, int]:
    """Jobs per state (fresh connection each call: the database may have restarted)."""
    from django.db import connection
    from django.db.models import Count

    from frontdesk.ledger.models import Job

    try:
        return {row["state"]: row["n"] for row in Job.objects.values("state").annotate(n=Count("id"))}
    except Exception:
        connection.close()
        return {"?": -1}


def close_db() -> None:
    from django.db import connections

    connections.close_all()


def other_database_users() -> list[str]:
    """Other people's pytest runs (and the performance benchmark) on this machine."""
    mine = {str(os.getpid()), str(os.getppid())}
    found = []
    for pattern in ("pytest", "bench/run.py"):
        out = subprocess.run(["pgrep", "-af", pattern], capture_output=True, text=True).stdout
        found += [line for line in out.splitlines() if line.split(" ", 1)[0] not in mine and "pgrep" not in line]
    return found


def restart_postgres(command: str | None = None) -> tuple[str, tuple[float, float] | None]:
    """Restart the machine's PostgreSQL once, unless other people's tests are running on it;
    or run ``command`` (a server of this run's own, which nobody else uses)."""
    if command is None:
        others = other_database_users()
        if others:
            return (f"skipped: {len(others)} other pytest/benchmark process(es) were running "
                    f"(e.g. pid {others[0].split(' ', 1)[0]}); a restart would break their runs"), None
        version = sorted(os.listdir("/etc/postgresql"))[-1]
        argv, what = ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"], f"PostgreSQL {version}"
    else:
        argv, what = ["sh", "-c", command], f"the run's own PostgreSQL ({command})"
    started = time.monotonic()
    result = subprocess.run(argv, capture_output=True, text=True, timeout=180)
    ended = time.monotonic()
    if result.returncode != 0:
        return f"failed: {(result.stderr or result.stdout).strip()[:300]}", (started, ended)
    return f"restarted {what} in {ended - started:.1f} s", (started, ended)


class Run:
    """One chaos run: start everything, deliver with chaos, drain. Verification is separate
    (verify.py) so the test and the bench check the same things."""

    def __init__(self, scenario: Scenario, deliveries: list[dict[str, Any]], plan: Plan, *,
                 base_env: dict[str, str], secret: str, log_dir: Path, postgres: bool,
                 progress: Callable[[str], None] = log) -> None:
        self.scenario, self.deliveries, self.plan = scenario, deliveries, plan
        self.base_env, self.secret, self.log_dir, self.postgres = base_env, secret, log_dir, postgres
        self.log = progress
        self.children = Children(log_dir)
        self.fakes: dict[str, FakeServer] = {}
        self.webs: list[subprocess.Popen[bytes]] = []
        self.workers: dict[int, subprocess.Popen[bytes]] = {}
        self.generation = Counter[int]()
        self.timeline = Timeline()
        self.rng = random.Random(plan.seed + 17)
        self.sender: Sender | None = None
        self.env: dict[str, str] = {}
        self.chaos_done = threading.Event()
        self.stop_chaos = threading.Event()

    # processes
    def start_worker(self, i: int) -> None:
        self.generation[i] += 1
        name = f"w{i}-{self.generation[i]}"
        self.workers[i] = self.children.start(
            f"worker-{name}", [PYTHON, "-m", "frontdesk.cli", "worker", "--concurrency", str(self.plan.concurrency),
                               "--worker-id", name], self.env)

    def start(self) -> None:
        self.fakes = start_fakes(self.scenario)
        self.env = child_env(self.base_env, self.fakes, self.secret)
        ports = [free_port() for _ in range(self.plan.web)]
        for n, port in enumerate(ports):
            self.webs.append(self.children.start(
                f"web-{n + 1}", [PYTHON, "-m", "gunicorn", "frontdesk.wsgi", "-b", f"127.0.0.1:{port}",
                                 "--workers", "1", "--timeout", "30", "--graceful-timeout", "5"], self.env))
        for port, proc in zip(ports, self.webs):
            wait_http_ok(f"http://127.0.0.1:{port}/healthz", 60, proc)
        for i in range(self.plan.workers):
            self.start_worker(i)
        self.ports = ports
        for fake in self.fakes.values():
            set_faults(fake, self.plan.fault_rate)

    def stop(self) -> None:
        self.stop_chaos.set()
        if self.sender is not None:
            self.sender.stopping.set()
        self.children.stop_all()
        for fake in self.fakes.values():
            fake.stop()

    # chaos
    def _delivered_share(self) -> float:
        s = self.sender
        return s.stats.done / s.total if s is not None and s.total else 1.0

    def _kill_one(self) -> None:
        i = self.rng.randrange(len(self.workers))
        proc = self.workers[i]
        running = queue_counts().get("running", 0)
        self.children.kill(proc)
        t = time.monotonic() - self.timeline.started
        self.timeline.kills.append((t, f"w{i}-{self.generation[i]} (pid {proc.pid}) with {running} job(s) running"))
        self.log(f"chaos: SIGKILL worker w{i}-{self.generation[i]} (pid {proc.pid}); {running} job(s) running")
        self.start_worker(i)

    def _chaos(self) -> None:
        plan, tl = self.plan, self.timeline
        stagger = plan.outage_seconds / 3
        outage_at = {name: plan.outage_start + n * stagger for n, name in enumerate(("circle", "kit", "stripe"))}
        outages_left = dict(outage_at) if plan.outage_seconds > 0 else {}
        kills_left = plan.kills
        next_kill: float | None = None
        db_pending = plan.db_restart
        if plan.db_restart and not self.postgres:
            db_pending, tl.db_restart = False, "skipped: not PostgreSQL"
        elif not plan.db_restart:
            tl.db_restart = "not planned (--no-db-restart)"
        try:
            while not self.stop_chaos.is_set():
                now = time.monotonic() - tl.started
                for name, at in list(outages_left.items()):
                    if now >= at:
                        set_faults(self.fakes[name], plan.fault_rate, {**OUTAGES[name], "seconds": plan.outage_seconds})
                        tl.outages[name] = (now, now + plan.outage_seconds)
                        self.log(f"chaos: {name} fully down for {plan.outage_seconds:.0f} s ({OUTAGES[name]})")
                        del outages_left[name]
                if db_pending and self._delivered_share() >= plan.db_restart_at_share:
                    db_pending = False
                    self.log("chaos: restarting PostgreSQL")
                    tl.db_restart, window = restart_postgres(plan.db_restart_command)
                    if window:
                        tl.db_window = (window[0] - tl.started, window[1] - tl.started)
                    self.log(f"chaos: {tl.db_restart}")
                if (kills_left is None or kills_left > 0) and self._delivered_share() >= plan.kill_after_share:
                    if next_kill is None:
                        next_kill = now + (self.rng.uniform(*plan.kill_every) if kills_left is None else 0)
                    elif now >= next_kill:
                        self._kill_one()
                        if kills_left is not None:
                            kills_left -= 1
                        next_kill = now + self.rng.uniform(*plan.kill_every)
                for i, proc in list(self.workers.items()):  # a worker that died by itself
                    if proc.poll() is not None:
                        tl.worker_exits.append(f"w{i}-{self.generation[i]} exited with {proc.returncode} at {now:.0f} s")
                        self.log(f"worker w{i}-{self.generation[i]} exited by itself ({proc.returncode}); restarting")
                        self.children.forget(proc)
                        self.start_worker(i)
                sending = self.sender is not None and self.sender.stats.finished_at is None
                outages_over = not outages_left and all(end <= now for _, end in tl.outages.values())
                kills_over = kills_left is None or kills_left <= 0
                if not sending and outages_over and not db_pending and (kills_over or kills_left is None):
                    break
                time.sleep(0.2)
        finally:
            tl.chaos_ended = time.monotonic()
            self.chaos_done.set()
            close_db()

    def _watch(self) -> None:
        try:
            self._watch_loop()
        finally:
            close_db()

    def _watch_loop(self) -> None:
        while not self.chaos_done.wait(10):
            s = self.sender
            if s is None:
                continue
            counts = queue_counts()
            waiting = sum(counts.get(k, 0) for k in PENDING)
            self.log(f"delivered {s.stats.done}/{s.total} ({len(s.stats.accepted)} events accepted, "
                     f"{s.stats.attempts} posts), jobs waiting or running {waiting}, "
                     f"succeeded {counts.get('succeeded', 0)}, review {counts.get('needs_review', 0)}")

    def execute(self) -> None:
        """Deliver everything while the chaos runs, then wait for the queue to drain."""
        self.sender = Sender(self.deliveries, self.ports, self.secret, self.plan.senders, seed=self.plan.seed)
        self.timeline.started = time.monotonic()
        chaos = threading.Thread(target=self._chaos, name="chaos", daemon=True)
        watcher = threading.Thread(target=self._watch, name="watch", daemon=True)
        self.sender.start()
        chaos.start()
        watcher.start()
        self.sender.join()
        self.log(f"all {self.sender.total} deliveries done in {self.sender.stats.finished_at - self.timeline.started:.0f} s")
        chaos.join()
        self.log("chaos over; waiting for the queue to drain")
        self.drain()

    def drain(self) -> None:
        """Wait until no job is queued, retrying or running, and every access that ends by
        time during the run has ended (plus one 30-s expiry sweep), for 3 s in a row."""
        from django.db import connection

        tl = self.timeline
        deadline = time.monotonic() + self.plan.drain_timeout
        not_before = time.monotonic() + max(0.0, self.scenario.last_access_change() + 35 - time.time())
        quiet_since: float | None = None
        last_log = 0.0
        while time.monotonic() < deadline:
            counts = queue_counts()
            waiting = 1 if "?" in counts else sum(counts.get(k, 0) for k in PENDING)
            now = time.monotonic()
            if waiting == 0:
                if quiet_since is None:
                    quiet_since = now
                    tl.drained = now
                if now - quiet_since >= 3 and now >= not_before:
                    connection.close()
                    return
            else:
                quiet_since, tl.drained = None, None
            if now - last_log > 15:
                last_log = now
                self.log(f"draining: {counts}")
            time.sleep(0.5)
        tl.drained = None
        tl.notes.append(f"the queue did not drain within {self.plan.drain_timeout:.0f} s")
        connection.close()
