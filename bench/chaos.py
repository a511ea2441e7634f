#!/usr/bin/env python
"""A chaos run of the whole pipeline on PostgreSQL (docs/reliability.md).

    .venv/bin/python bench/chaos.py                       # 10,000 events, 2,000 customers, ~15-25 min
    .venv/bin/python bench/chaos.py --events 1000 --customers 200 --outage-seconds 10

Two gunicorn web processes and three `frontdesk worker` processes against a fresh database;
the Circle, Kit and Stripe fakes in this process. Events of realistic customer lifecycles are
delivered 1–3 times each, shuffled, to both web ports; meanwhile workers are SIGKILLed and
restarted, PostgreSQL is restarted once (only if no one else's pytest is running), the fakes
fail 20 % of calls at random and each goes fully down once. Then the queue drains and the run
is checked: exit status 1 if any target is missed.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for path in (str(ROOT), str(ROOT / "bench")):
    if path not in sys.path:
        sys.path.insert(0, path)

SECRET = "whsec_chaos_bench"
DEFAULT_DB = "chaos_bench"


def psql(sql: str) -> None:
    subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-v", "ON_ERROR_STOP=1",
                    "-q", "-c", sql], check=True, timeout=120, capture_output=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench/chaos.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--events", type=int, default=10_000)
    p.add_argument("--customers", type=int, default=2_000)
    p.add_argument("--web", type=int, default=2, help="gunicorn processes (one sync worker each)")
    p.add_argument("--workers", type=int, default=3, help="`frontdesk worker` processes")
    p.add_argument("--concurrency", type=int, default=4, help="threads per worker process")
    p.add_argument("--senders", type=int, default=8, help="concurrent webhook deliveries")
    p.add_argument("--outage-seconds", type=float, default=120.0, help="each provider fully down this long (0: none)")
    p.add_argument("--outage-start", type=float, default=20.0, help="seconds into delivery when Circle goes down")
    p.add_argument("--fault-rate", type=float, default=0.2, help="share of provider calls that fail at random")
    p.add_argument("--kills", type=int, default=None, help="SIGKILL this many workers (default: one every 5-15 s)")
    p.add_argument("--no-db-restart", action="store_true", help="do not restart PostgreSQL")
    p.add_argument("--db-restart-command", default=None,
                   help="restart a PostgreSQL of this run's own with this shell command instead of the "
                        "machine's cluster (then other people's runs are not affected and not checked for)")
    p.add_argument("--database-url", default=None,
                   help=f"default: a fresh PostgreSQL database {DEFAULT_DB} (created and dropped)")
    p.add_argument("--expiry-window", default="60,300",
                   help="seconds after the start within which time-based access endings fall")
    p.add_argument("--drain-timeout", type=float, default=1200.0)
    p.add_argument("--lease-seconds", type=float, default=10.0)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--log-level", default="WARNING", help="of the web and worker processes")
    p.add_argument("--keep", action="store_true", help="keep the database and the log folder")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    created_db = None
    database_url = args.database_url
    if database_url is None:
        created_db = DEFAULT_DB
        psql(f"DROP DATABASE IF EXISTS {created_db} WITH (FORCE)")
        psql(f"CREATE DATABASE {created_db}")
        database_url = f"postgres://postgres@127.0.0.1:5432/{created_db}"
    postgres = database_url.startswith(("postgres://", "postgresql://"))
    var_dir = Path(os.environ.get("FRONTDESK_VAR_DIR", "/tmp/chaos-var"))
    var_dir.mkdir(parents=True, exist_ok=True)
    log_dir = Path(tempfile.mkdtemp(prefix="chaos-", dir=var_dir))

    from chaos.harness import timing_env

    timings = timing_env(lease=args.lease_seconds)
    base_env = {"DATABASE_URL": database_url, "FRONTDESK_VAR_DIR": str(var_dir),
                "FRONTDESK_LOG_LEVEL": args.log_level.upper(), **timings}
    # This process: the same database, for watching the queue and checking the results.
    os.environ.update(base_env)
    os.environ.update({"DJANGO_SETTINGS_MODULE": "frontdesk.settings", "STRIPE_WEBHOOK_SECRET": SECRET,
                       "STRIPE_API_KEY": "sk_test_frontdesk", "CIRCLE_API_TOKEN": "circle-test-token",
                       "KIT_API_KEY": "kit-test-key", "FRONTDESK_LOG_LEVEL": "WARNING"})
    import django

    django.setup()
    from chaos.runner import Plan, run_chaos
    from chaos.harness import log
    from chaos.scenario import RULES_FILE, generate

    lo, hi = (float(x) for x in args.expiry_window.split(","))
    plan = Plan(web=args.web, workers=args.workers, concurrency=args.concurrency, senders=args.senders,
                fault_rate=args.fault_rate, outage_seconds=args.outage_seconds, outage_start=args.outage_start,
                kills=args.kills, kill_after_share=0.3 if args.kills is not None else 0.0, db_restart=postgres and not args.no_db_restart, drain_timeout=args.drain_timeout,
                seed=args.seed, db_restart_command=args.db_restart_command)
    started = time.monotonic()
    code = 1
    try:
        setup_env = dict(os.environ)
        for cmd in (["migrate", "--no-input", "--verbosity", "0"], ["rules", "load", str(RULES_FILE)]):
            subprocess.run([sys.executable, "-m", "frontdesk.cli", *cmd], env=setup_env, cwd=ROOT, check=True,
                           timeout=600, capture_output=True)
        log(f"generating {args.events} events for {args.customers} customers (seed {args.seed})")
        scenario = generate(args.events, args.customers, seed=args.seed, t0=int(time.time()),
                            tag=uuid.uuid4().hex[:6], expiry_window=(lo, hi))
        log(f"database {database_url}; logs in {log_dir}")
        report, run = run_chaos(scenario, plan, base_env=base_env, secret=SECRET, log_dir=log_dir,
                                postgres=postgres)
        print(render(args, plan, timings, report, run, time.monotonic() - started, database_url))
        code = 1 if report.failures() else 0
    finally:
        from django.db import connections

        connections.close_all()
        if created_db and not args.keep:
            try:
                psql(f"DROP DATABASE IF EXISTS {created_db} WITH (FORCE)")
            except subprocess.CalledProcessError as exc:
                log(f"could not drop {created_db}: {exc.stderr}")
    return code


def render(args: argparse.Namespace, plan: object, timings: dict[str, str], report: object, run: object,
           seconds: float, database_url: str) -> str:
    from chaos.harness import FAULT_MIX, OUTAGES

    tl = run.timeline  # type: ignore[attr-defined]
    mix = ", ".join(f"{next(iter(b))}={b[next(iter(b))]} {share:.0%}" for b, share in FAULT_MIX)
    outages = ", ".join(f"{name} {OUTAGES[name]} at {a:.0f}–{b:.0f} s" for name, (a, b) in tl.outages.items())
    kills = f"{len(tl.kills)} SIGKILLs" + (f" (first at {tl.kills[0][0]:.0f} s, last at {tl.kills[-1][0]:.0f} s)"
                                           if tl.kills else "")
    db_kind = "PostgreSQL" if database_url.startswith("postgres") else "SQLite"
    lines = [
        "",
        f"## Chaos run: {args.events} events, {args.customers} customers, {db_kind}",
        "",
        f"- processes: {args.web} × gunicorn (1 sync worker each), {args.workers} × `frontdesk worker "
        f"--concurrency {args.concurrency}`, fakes in the bench process; {args.senders} concurrent deliveries",
        f"- provider faults: {args.fault_rate:.0%} of calls at random ({mix}); full outages: {outages or 'none'}",
        f"- workers: {kills}; exits by themselves: {len(tl.worker_exits)}",
        f"- database restart: {tl.db_restart}",
        "- fast settings (environment of web and workers): "
        + ", ".join(f"{k}={v}" for k, v in timings.items()) + "; *_RETRY_MAX_AGE left at 3 days",
        f"- total run time {seconds / 60:.1f} min; deliveries took "
        f"{run.sender.stats.finished_at - tl.started:.0f} s; chaos ended at {tl.chaos_ended - tl.started:.0f} s",  # type: ignore[attr-defined]
        "",
        report.table(),  # type: ignore[attr-defined]
        "",
        report.breakdown(),  # type: ignore[attr-defined]
    ]
    if tl.notes:
        lines += ["", *tl.notes]
    failures = report.failures()  # type: ignore[attr-defined]
    lines += ["", "RESULT: " + ("all targets met" if not failures else "MISSED: " + "; ".join(failures))]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
