"""One chaos run from start to verdict, shared by bench/chaos.py and tests/test_chaos.py."""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any

from .harness import Plan, Run, log
from .scenario import Scenario, deliveries
from .verify import Report, verify


def run_chaos(scenario: Scenario, plan: Plan, *, base_env: dict[str, str], secret: str, log_dir: Path,
              postgres: bool, progress: Any = log) -> tuple[Report, Run]:
    """Start everything, deliver with chaos, drain, verify, stop. Django must be configured
    for the same database as ``base_env["DATABASE_URL"]``, with the rules already loaded."""
    sequence = deliveries(scenario, random.Random(plan.seed + 1))
    run = Run(scenario, sequence, plan, base_env=base_env, secret=secret, log_dir=log_dir, postgres=postgres,
              progress=progress)
    try:
        run.start()
        run.execute()
        assert run.sender is not None
        report = verify(scenario, run.fakes, run.sender.stats, run.timeline, len(sequence), time.time())
    finally:
        run.stop()
    return report, run
