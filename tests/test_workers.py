"""Worker processes: crashes, leases, and many workers sharing one queue."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from django.utils import timezone

from frontdesk.customers.models import Customer, Entitlement
from frontdesk.ledger.enqueue import sync_key
from frontdesk.ledger.models import Attempt, Job, JobState

from .conftest import PYTHON, subprocess_env
from .test_delivery import buy

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def start_worker(env: dict[str, str], concurrency: int = 2, name: str = "w") -> subprocess.Popen[bytes]:
    # Logs go to a file (a pipe nobody reads would fill and block the worker); shown on failure.
    folder = env.get("FRONTDESK_VAR_DIR", "var")
    os.makedirs(folder, exist_ok=True)
    log = open(f"{folder}/worker-{name}-{os.getpid()}.log", "wb")  # noqa: SIM115
    return subprocess.Popen([PYTHON, "-m", "frontdesk.cli", "worker", "--concurrency", str(concurrency),
                             "--worker-id", name], env=env, stdout=log, stderr=log)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def all_final() -> bool:
    return not Job.objects.filter(state__in=[JobState.QUEUED, JobState.RETRYING, JobState.RUNNING]).exists()


def test_a_job_whose_worker_is_killed_is_taken_again_after_its_lease(client: Any, fakes: Any, rules: Any) -> None:
    # The create call hangs long enough to kill the worker while it waits for Circle.
    fakes.circle.fail(latency=2.5, path="/api/admin/v2/community_members", method="POST", count=1)
    buy(client, "killed@example.com")
    env = subprocess_env(fakes)
    first = start_worker(env, name="doomed")
    try:
        wait_for(lambda: bool(fakes.circle.calls_to("/api/admin/v2/community_members/search")), 30, "the member search")
        time.sleep(0.5)  # now inside the slow create
        assert Job.objects.get(kind="circle.sync").state == JobState.RUNNING
        first.send_signal(signal.SIGKILL)
        first.wait()
    finally:
        stop(first)
    second = start_worker(env, name="rescuer")
    try:
        wait_for(all_final, 40, "all jobs to finish")
    finally:
        stop(second)
    job = Job.objects.get(kind="circle.sync")
    assert job.state == JobState.SUCCEEDED
    attempts = list(Attempt.objects.filter(job=job).values_list("worker", "outcome"))
    assert attempts[0] == ("doomed", "lost")
    assert attempts[-1] == ("rescuer", "succeeded")
    member = fakes.circle.member("killed@example.com")
    assert member is not None and member["space_ids"] == {101, 102}
    creates = [c for c in fakes.circle.calls_to("/api/admin/v2/community_members", "POST") if c.changed]
    assert len(creates) <= 1  # the rescuer searched first and found the member
    assert len([m for m in fakes.circle.state()["members"] if m["email"] == "killed@example.com"]) == 1


def test_sigterm_releases_or_finishes_in_flight_jobs(client: Any, fakes: Any, rules: Any) -> None:
    fakes.circle.fail(latency=1.0, path="/api/admin/v2/community_members", method="POST", count=1)
    buy(client, "graceful@example.com")
    env = subprocess_env(fakes)
    proc = start_worker(env, name="graceful")
    wait_for(lambda: Job.objects.filter(kind="circle.sync", state="running").exists(), 30, "a running job")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    job = Job.objects.get(kind="circle.sync")
    assert job.state in (JobState.SUCCEEDED, JobState.RETRYING)
    assert job.lease_owner == ""


def test_four_worker_processes_run_each_of_1000_jobs_exactly_once(fakes: Any, rules: Any) -> None:
    n = 1000
    customers = Customer.objects.bulk_create(Customer(email=f"bulk{i}@example.com") for i in range(n))
    Entitlement.objects.bulk_create(
        Entitlement(customer=c, name="course", source_type="invoice", source_id=f"in_{c.pk}", rules_version=rules)
        for c in customers)
    now = timezone.now()
    Job.objects.bulk_create(
        Job(kind="circle.sync", provider="circle", customer=c, idempotency_key=f"bulk:{c.pk}",
            concurrency_key=sync_key("circle", c.pk), correlation_id="bulk", run_at=now,
            deadline=now + timezone.timedelta(hours=1))
        for c in customers)
    env = subprocess_env(fakes)
    workers = [start_worker(env, concurrency=2, name=f"w{i}") for i in range(4)]
    try:
        wait_for(all_final, 240, "1000 jobs to finish")
    finally:
        for w in workers:
            stop(w)
    assert Job.objects.filter(state=JobState.SUCCEEDED).count() == n
    assert set(Job.objects.values_list("attempts", flat=True)) == {1}
    per_job = Counter(Attempt.objects.values_list("job_id", flat=True))
    assert len(per_job) == n and set(per_job.values()) == {1}
    assert len({w for w in Attempt.objects.values_list("worker", flat=True)}) == 4  # all took part
    creates = fakes.circle.calls_to("/api/admin/v2/community_members", "POST")
    assert len(creates) == n
    assert len({c.body["email"] for c in creates}) == n
