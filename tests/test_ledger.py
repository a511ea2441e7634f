"""The job ledger's parts: backoff, the shared rate limit, claims, leases, coalescing."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from frontdesk.customers.models import Customer
from frontdesk.ledger import backoff, claim, providers, ratelimit
from frontdesk.ledger.enqueue import enqueue, request_sync, sync_key
from frontdesk.ledger.models import Attempt, Job, JobState, ProviderState, RateSlot


def test_backoff_ceiling_doubles_up_to_the_cap() -> None:
    ceilings = [backoff.ceiling(n, 10, 3600) for n in range(1, 11)]
    assert ceilings[:4] == [10, 20, 40, 80]
    assert ceilings[-1] == 3600
    assert all(a <= b for a, b in zip(ceilings, ceilings[1:], strict=False))


def test_backoff_uses_full_jitter() -> None:
    assert backoff.delay(3, 10, 3600, rand=lambda: 0.0) == 0.0
    assert backoff.delay(3, 10, 3600, rand=lambda: 0.5) == 20.0
    assert backoff.delay(30, 10, 3600, rand=lambda: 0.999) == pytest.approx(3596.4)


@pytest.mark.django_db
def test_rate_slots_are_spaced_by_window_over_limit(settings: Any) -> None:
    settings.PROVIDERS = {**settings.PROVIDERS, "kit": {**settings.PROVIDERS["kit"], "rate_limit": (120, 60.0)}}
    now = 1_000_000.0
    slots = [ratelimit.reserve("kit", now=now) for _ in range(5)]
    step = 0.5 * ratelimit.SAFETY
    assert slots == pytest.approx([now + i * step for i in range(5)])
    # Any 60 s window holds at most 120 reserved slots.
    many = slots + [ratelimit.reserve("kit", now=now, max_wait=1e9) for _ in range(200)]
    assert sum(1 for s in many if now <= s < now + 60) <= 120


@pytest.mark.django_db
def test_a_slot_too_far_ahead_defers_instead_of_waiting(settings: Any) -> None:
    settings.PROVIDERS = {**settings.PROVIDERS, "kit": {**settings.PROVIDERS["kit"], "rate_limit": (1, 60.0)}}
    assert ratelimit.reserve("kit") is not None
    assert ratelimit.reserve("kit") is None
    with pytest.raises(ratelimit.Deferred) as err:
        ratelimit.acquire("kit")
    assert err.value.wait > 50
    assert RateSlot.objects.count() == 1


def _job(key: str, **kw: Any) -> Job:
    job = enqueue("kit.sync", "kit", idempotency_key=key, correlation_id="c", **kw)
    assert job is not None
    return job


@pytest.mark.django_db
def test_claim_takes_due_jobs_in_order_and_skips_future_and_blocked_ones() -> None:
    later = _job("later", run_at=timezone.now() + timedelta(hours=1))
    first = _job("first", run_at=timezone.now() - timedelta(seconds=5))
    second = _job("second")
    circle = enqueue("circle.sync", "circle", idempotency_key="c1", correlation_id="c")
    assert claim.claim("w1", blocked=["circle"]).pk == first.pk
    assert claim.claim("w1", blocked=["circle"]).pk == second.pk
    assert claim.claim("w1", blocked=["circle"]) is None
    assert claim.claim("w1", blocked=[]).pk == circle.pk
    first.refresh_from_db()
    assert (first.state, first.lease_owner) == ("running", "w1")
    assert first.lease_expires_at > timezone.now()
    later.refresh_from_db()
    assert later.state == "queued"


@pytest.mark.django_db
def test_jobs_of_one_customer_and_provider_never_run_at_once() -> None:
    customer = Customer.objects.create(email="one@example.com")
    first = request_sync("kit", customer.pk, correlation_id="c", cause="a")
    assert request_sync("kit", customer.pk, correlation_id="c", cause="b") is None  # coalesced
    assert claim.claim("w1", []).pk == first.pk
    # A change while it runs: the running job is flagged, no second job is claimable.
    assert request_sync("kit", customer.pk, correlation_id="c", cause="c") is None
    first.refresh_from_db()
    assert first.rerun_requested
    assert claim.claim("w2", []) is None


@pytest.mark.django_db
def test_a_finished_job_with_a_rerun_request_queues_one_follow_up(fakes: Any, rules: Any) -> None:
    from frontdesk.ledger.runner import execute

    customer = Customer.objects.create(email="rerun@example.com")
    request_sync("kit", customer.pk, correlation_id="c", cause="a")
    job = claim.claim("w1", [])
    request_sync("kit", customer.pk, correlation_id="c", cause="b")
    assert execute(job, "w1") == "succeeded"
    follow_up = Job.objects.get(concurrency_key=sync_key("kit", customer.pk), state="queued")
    assert follow_up.idempotency_key.endswith(f"rerun:{job.pk}")


@pytest.mark.django_db
def test_an_expired_lease_returns_the_job_and_marks_its_attempt_lost() -> None:
    job = _job("dead")
    claimed = claim.claim("dead-worker", [])
    Attempt.objects.create(job=claimed, number=1, worker="dead-worker", started_at=timezone.now())
    Job.objects.filter(pk=job.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert claim.reap_expired() == 1
    job.refresh_from_db()
    assert (job.state, job.lease_owner, job.reason_code) == ("retrying", "", "lease_expired")
    assert Attempt.objects.get().outcome == "lost"
    assert claim.claim("w2", []).pk == job.pk


@pytest.mark.django_db
def test_only_the_lease_owner_can_renew() -> None:
    job = _job("renew")
    claim.claim("w1", [])
    assert claim.renew_leases("w2", [job.pk]) == 0
    assert claim.renew_leases("w1", [job.pk]) == 1


@pytest.mark.django_db
def test_idempotency_keys_are_unique() -> None:
    _job("same")
    assert enqueue("kit.sync", "kit", idempotency_key="same", correlation_id="c") is None
    assert Job.objects.count() == 1


@pytest.mark.django_db
def test_the_circuit_opens_at_the_threshold_and_one_probe_wins(settings: Any) -> None:
    settings.CIRCUIT_THRESHOLD = 3
    for _ in range(2):
        providers.record_transient("circle", "http_500", "boom")
    assert providers.blocked_providers() == []
    providers.record_transient("circle", "http_500", "boom")
    assert providers.blocked_providers() == ["circle"]
    assert not providers.take_probe("circle")
    ProviderState.objects.filter(provider="circle").update(blocked_until=timezone.now() - timedelta(seconds=1))
    assert providers.take_probe("circle") is not None
    assert providers.take_probe("circle") is None  # the others wait for the probe
    providers.record_success("circle")
    state = ProviderState.objects.get(provider="circle")
    assert (state.status, state.consecutive_failures) == ("ok", 0)


@pytest.mark.django_db
def test_a_failing_probe_doubles_the_cooldown(settings: Any) -> None:
    settings.CIRCUIT_THRESHOLD = 1
    settings.CIRCUIT_COOLDOWN_SECONDS = 10
    providers.record_transient("kit", "timeout", "t")
    assert ProviderState.objects.get(provider="kit").cooldown_seconds == 10
    providers.record_transient("kit", "timeout", "t")
    assert ProviderState.objects.get(provider="kit").cooldown_seconds == 20


@pytest.mark.django_db
def test_retries_stop_at_the_deadline_and_go_to_review(fakes: Any, rules: Any) -> None:
    from frontdesk.ledger.runner import execute

    customer = Customer.objects.create(email="late@example.com")
    from frontdesk.customers.models import Entitlement
    Entitlement.objects.create(customer=customer, name="course", source_type="invoice", source_id="in_1",
                               rules_version=rules)
    job = request_sync("kit", customer.pk, correlation_id="c", cause="x")
    Job.objects.filter(pk=job.pk).update(deadline=timezone.now() + timedelta(milliseconds=1))
    fakes.kit.fail(500)
    time.sleep(0.01)
    assert execute(claim.claim("w", []), "w") == JobState.NEEDS_REVIEW
    job.refresh_from_db()
    assert job.reason_code == "retries_exhausted"
    assert "http_500" in job.last_error


@pytest.mark.django_db
def test_a_success_writes_nothing_on_a_clean_lane_and_resets_failures_otherwise(
        django_assert_num_queries: Any) -> None:
    clean = providers.take_probe("kit")
    assert clean is not None
    with django_assert_num_queries(0):
        providers.record_success("kit", seen=clean)
    providers.record_transient("kit", "http_500", "boom")
    seen = providers.take_probe("kit")
    assert seen is not None and seen.consecutive_failures == 1
    providers.record_success("kit", seen=seen)
    assert ProviderState.objects.get(provider="kit").consecutive_failures == 0


def _job_for(provider: str) -> Job:
    job = enqueue(f"{provider}.sync", provider, idempotency_key=f"{provider}:x", correlation_id="c")
    assert job is not None
    return job


@pytest.mark.django_db
def test_the_claim_skips_blocked_lanes_counts_the_attempt_and_says_whether_the_lane_is_clean() -> None:
    future, past = timezone.now() + timedelta(minutes=5), timezone.now() - timedelta(seconds=1)
    ProviderState.objects.create(provider="circle", status=ProviderState.CIRCUIT_OPEN, blocked_until=future)
    circle = _job_for("circle")
    assert claim.claim("w") is None  # its lane is blocked
    ProviderState.objects.filter(provider="circle").update(blocked_until=past)
    probe = claim.claim("w")
    assert (probe.pk, probe.lane_clean, probe.attempts) == (circle.pk, False, 1)  # the runner probes
    ProviderState.objects.create(provider="kit", status=ProviderState.OK, consecutive_failures=2)
    kit = _job_for("kit")
    claimed = claim.claim("w")
    assert (claimed.pk, claimed.lane_clean) == (kit.pk, False)  # open, but failures to reset
    stripe = _job_for("stripe")  # no lane row yet: it never failed
    claimed = claim.claim("w")
    assert (claimed.pk, claimed.lane_clean) == (stripe.pk, True)


@pytest.mark.django_db
def test_a_job_put_back_unrun_does_not_spend_its_attempt() -> None:
    from frontdesk.ledger.runner import execute

    job = _job_for("circle")
    claimed = claim.claim("w")
    assert claimed.attempts == 1
    ProviderState.objects.create(provider="circle", status=ProviderState.PAUSED,
                                 blocked_until=timezone.now() + timedelta(minutes=5))
    claimed.lane_clean = False  # paused by another worker after this claim
    assert execute(claimed, "w") == JobState.QUEUED
    job.refresh_from_db()
    assert (job.state, job.attempts, job.reason_code) == (JobState.QUEUED, 0, "circle_blocked")
    assert not Attempt.objects.filter(job=job).exists()
