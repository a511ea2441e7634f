"""Reconciliation: drift made by hand in the fake Circle and Kit is found, recorded and repaired
through the normal sync jobs, inside the quota, without loading every customer."""

from __future__ import annotations

import gc
import threading
import weakref
from datetime import timedelta
from io import StringIO
from typing import Any

import httpx
import pytest
from django.core.management import call_command
from django.utils import timezone

from frontdesk.connectors.http import TRANSIENT, ProviderError
from frontdesk.customers.access import desired_state
from frontdesk.customers.models import Customer, Entitlement, ProviderAccount
from frontdesk.ledger.enqueue import request_sync
from frontdesk.ledger.models import Job, JobState, ProviderState
from frontdesk.ledger.ratelimit import Deferred, interval
from frontdesk.logs import email_hash
from frontdesk.reconcile import circle as circle_reader
from frontdesk.reconcile import engine, sweep
from frontdesk.reconcile.caller import Caller
from frontdesk.reconcile.circle import CircleReader
from frontdesk.reconcile.compare import Scope
from frontdesk.reconcile.models import Drift, ProviderUsage, ReconcileRun
from frontdesk.reconcile.sweep import prune_runs, run_scheduled, start_scheduled
from frontdesk.reconcile.usage import Budget, count_delivery_request, count_request, reconciling, used
from frontdesk.rules.models import RulesVersion

from .conftest import drain
from .test_delivery import buy

pytestmark = pytest.mark.django_db
CIRCLE = "/api/admin/v2"
COMMUNITY = {"space_ids": {101, 102}, "space_group_ids": {201}, "member_tag_ids": {401}, "access_group_ids": {301}}


# ---- helpers -------------------------------------------------------------------------------

def circle(fakes: Any, method: str, path: str, **kwargs: Any) -> httpx.Response:
    """A change made by hand in Circle (an admin, or another tool), through its API."""
    response = httpx.request(method, fakes.circle.url + CIRCLE + path,
                             headers={"Authorization": "Token circle-test-token"}, **kwargs)
    assert response.status_code < 300, response.text
    return response


def kit(fakes: Any, method: str, path: str, **kwargs: Any) -> httpx.Response:
    response = httpx.request(method, fakes.kit.url + path, headers={"X-Kit-Api-Key": "kit-test-key"}, **kwargs)
    assert response.status_code < 300, response.text
    return response


def reconcile(*args: str) -> tuple[ReconcileRun, str]:
    out = StringIO()
    call_command("reconcile", *args, stdout=out)
    return ReconcileRun.objects.order_by("-pk").first(), out.getvalue()  # type: ignore[return-value]


def found(run: ReconcileRun) -> set[tuple[str, str, str, str, bool]]:
    return {(d.customer.email, d.kind, d.target_kind, d.target_id, d.repaired)
            for d in Drift.objects.filter(run=run).select_related("customer")}


def bought(client: Any, fakes: Any, *emails: str) -> None:
    for email in emails:
        buy(client, email)
    drain()
    for email in emails:
        assert {k: fakes.circle.member(email)[k] for k in COMMUNITY} == COMMUNITY


def circle_matches_desired(fakes: Any, email: str) -> bool:
    """The member holds exactly the desired rule-named targets (others are not ours)."""
    want = desired_state(Customer.objects.get(email=email))["circle"]
    named = Scope.from_rules(RulesVersion.current().parsed, "circle").targets  # type: ignore[union-attr]
    member = fakes.circle.member(email)
    return member is not None and all(member[f"{k[:-1]}_ids"] & named[k] == set(v) for k, v in want.items())


def kit_matches_desired(fakes: Any, email: str) -> bool:
    want = desired_state(Customer.objects.get(email=email))["kit"]
    sub = fakes.kit.subscriber(email)
    return (sub is not None and sub["tag_ids"] == set(want["tags"]) and sub["sequence_ids"] >= set(want["sequences"])
            and all(sub["fields"].get(k) == v for k, v in want["fields"].items()))


def sync_jobs(provider: str) -> list[Job]:
    return list(Job.objects.filter(kind=f"{provider}.sync", state=JobState.QUEUED))


# ---- Circle --------------------------------------------------------------------------------

def test_circle_drift_is_found_by_kind_and_repaired_through_sync_jobs(client: Any, fakes: Any, rules: Any) -> None:
    bought(client, fakes, "ada@example.com", "bob@example.com", "cy@example.com", "dot@example.com")
    cy_id = fakes.circle.member("cy@example.com")["id"]
    circle(fakes, "DELETE", "/space_members", params={"email": "ada@example.com", "space_id": 101})
    circle(fakes, "DELETE", "/tagged_members", params={"user_email": "ada@example.com", "member_tag_id": 401})
    circle(fakes, "POST", "/space_members", json={"email": "bob@example.com", "space_id": 103})  # course space
    circle(fakes, "DELETE", f"/community_members/{cy_id}")  # deactivated by hand
    fakes.circle.add_space(999, "Free chat")  # not named by the rules: not frontdesk's business
    circle(fakes, "POST", "/space_members", json={"email": "dot@example.com", "space_id": 999})
    before = len(fakes.kit.calls)

    run, out = reconcile("--provider", "circle")

    assert run.status == ReconcileRun.SUCCEEDED
    assert found(run) == {
        ("ada@example.com", "missing_access", "spaces", "101", True),
        ("ada@example.com", "wrong_tags", "member_tags", "401", True),
        ("bob@example.com", "unexpected_access", "spaces", "103", True),
        ("cy@example.com", "member_removed", "member", str(cy_id), True),
    }
    assert run.counts["circle"]["drift"] == {"missing_access": 1, "wrong_tags": 1, "unexpected_access": 1, "member_removed": 1}
    assert len(fakes.kit.calls) == before  # --provider circle
    assert ProviderAccount.objects.get(customer__email="cy@example.com", provider="circle").external_id == ""
    jobs = sync_jobs("circle")
    assert len(jobs) == 3 and {j.correlation_id for j in jobs} == {run.correlation_id}
    assert "missing_access spaces 101" in out and "ada@example.com" not in out  # hashes only by default
    assert email_hash("ada@example.com") in out

    drain()
    for email in ("ada@example.com", "bob@example.com", "cy@example.com", "dot@example.com"):
        assert circle_matches_desired(fakes, email), email
    assert fakes.circle.member("cy@example.com")["id"] != cy_id  # re-created
    assert 999 in fakes.circle.member("dot@example.com")["space_ids"]  # left alone

    again, _ = reconcile("--provider", "circle")
    assert again.status == ReconcileRun.SUCCEEDED and found(again) == set()
    assert sync_jobs("circle") == []


def test_a_member_without_access_is_checked_individually_only_when_needed(client: Any, fakes: Any, rules: Any) -> None:
    bought(client, fakes, "ada@example.com", "bob@example.com")
    member = fakes.circle.member("ada@example.com")
    for space in (101, 102):
        circle(fakes, "DELETE", "/space_members", params={"email": "ada@example.com", "space_id": space})
    circle(fakes, "DELETE", "/space_group_members", params={"email": "ada@example.com", "space_group_id": 201})
    circle(fakes, "DELETE", "/access_groups/301/community_members", params={"email": "ada@example.com"})
    circle(fakes, "DELETE", "/tagged_members", params={"user_email": "ada@example.com", "member_tag_id": 401})
    fakes.circle.calls.clear()

    run, _ = reconcile("--provider", "circle")

    # Ada is in no list but still a member: one show request proves it; Bob costs nothing.
    shows = fakes.circle.calls_to(f"{CIRCLE}/community_members/")
    assert [c.path for c in shows] == [f"{CIRCLE}/community_members/{member['id']}"]
    assert {d[1] for d in found(run)} == {"missing_access", "wrong_tags"} and len(found(run)) == 5
    drain()
    assert circle_matches_desired(fakes, "ada@example.com")
    assert fakes.circle.member("ada@example.com")["id"] == member["id"]  # not re-created


def test_an_unlinked_member_is_matched_by_email_and_linked(client: Any, fakes: Any, rules: Any) -> None:
    bought(client, fakes, "eve@example.com")
    member = fakes.circle.member("eve@example.com")
    ProviderAccount.objects.filter(provider="circle").delete()  # e.g. access granted before frontdesk
    circle(fakes, "POST", "/space_members", json={"email": "eve@example.com", "space_id": 103})
    fakes.circle.calls.clear()

    run, _ = reconcile("--provider", "circle")

    assert found(run) == {("eve@example.com", "unexpected_access", "spaces", "103", True)}
    account = ProviderAccount.objects.get(provider="circle")
    assert (account.external_id, account.email) == (str(member["id"]), "eve@example.com")
    drain()
    assert circle_matches_desired(fakes, "eve@example.com")
    assert fakes.circle.calls_to(f"{CIRCLE}/community_members", "POST") == []  # linked, not re-created


def test_customers_with_a_sync_in_flight_or_synced_during_the_read_are_skipped(
        client: Any, fakes: Any, rules: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    bought(client, fakes, "ada@example.com", "bob@example.com")
    for email in ("ada@example.com", "bob@example.com"):
        circle(fakes, "DELETE", "/space_members", params={"email": email, "space_id": 101})
    ada, bob = (Customer.objects.get(email=e) for e in ("ada@example.com", "bob@example.com"))
    request_sync("circle", ada.pk, correlation_id="x" * 32, cause="test")  # queued: state in flux
    load = CircleReader.load

    def load_then_bob_syncs(self: CircleReader) -> None:
        load(self)
        ProviderAccount.objects.filter(customer=bob, provider="circle").update(synced_at=timezone.now())

    monkeypatch.setattr(CircleReader, "load", load_then_bob_syncs)
    run, _ = reconcile("--provider", "circle")
    assert found(run) == set() and run.counts["circle"]["skipped_in_flight"] == 2

    monkeypatch.setattr(CircleReader, "load", load)
    drain()  # Ada's sync trusts `applied`, so it does not notice the drift
    run, _ = reconcile("--provider", "circle")
    assert {d[0] for d in found(run)} == {"ada@example.com", "bob@example.com"}


# ---- Kit -----------------------------------------------------------------------------------

def test_kit_drift_is_found_and_repaired_but_an_unsubscribe_is_respected(client: Any, fakes: Any, rules: Any) -> None:
    bought(client, fakes, "ada@example.com", "bob@example.com", "cy@example.com", "dee@example.com")
    ids = {e: fakes.kit.subscriber(e)["id"] for e in ("ada@example.com", "cy@example.com", "dee@example.com")}
    kit(fakes, "DELETE", f"/v4/tags/501/subscribers/{ids['ada@example.com']}")
    kit(fakes, "PUT", f"/v4/subscribers/{ids['ada@example.com']}", json={"fields": {"plan": "free"}})
    kit(fakes, "POST", "/v4/tags/503/subscribers", json={"email_address": "bob@example.com"})
    kit(fakes, "POST", f"/v4/subscribers/{ids['dee@example.com']}/unsubscribe", json={})
    with fakes.kit._lock:  # deleted in Kit's UI: the API has no delete call
        gone = ids["cy@example.com"]
        del fakes.kit.subscribers[gone]
        for table in (fakes.kit.taggings, fakes.kit.enrolments):
            for key in [k for k in table if k[1] == gone]:
                del table[key]
    before = len(fakes.circle.calls)

    run, _ = reconcile("--provider", "kit")

    assert run.status == ReconcileRun.SUCCEEDED
    assert found(run) == {
        ("ada@example.com", "wrong_tags", "tags", "501", True),
        ("ada@example.com", "wrong_fields", "fields", "plan", True),
        ("bob@example.com", "wrong_tags", "tags", "503", True),
        ("cy@example.com", "member_removed", "subscriber", str(gone), True),
        ("dee@example.com", "member_removed", "subscriber", str(ids["dee@example.com"]), False),
    }
    assert Drift.objects.get(run=run, kind="wrong_fields").detail == "expected 'community', found 'free'"
    assert len(fakes.circle.calls) == before
    assert len(sync_jobs("kit")) == 3  # not for Dee

    drain()
    for email in ("ada@example.com", "bob@example.com", "cy@example.com"):
        assert kit_matches_desired(fakes, email), email
    assert fakes.kit.subscriber("dee@example.com")["state"] == "cancelled"

    again, _ = reconcile("--provider", "kit")
    assert found(again) == {("dee@example.com", "member_removed", "subscriber", str(ids["dee@example.com"]), False)}
    assert sync_jobs("kit") == []


# ---- policies ------------------------------------------------------------------------------

def test_report_policy_and_dry_run_record_but_change_nothing(client: Any, fakes: Any, rules: Any,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    bought(client, fakes, "ada@example.com")
    circle(fakes, "DELETE", "/space_members", params={"email": "ada@example.com", "space_id": 101})
    sub = fakes.kit.subscriber("ada@example.com")
    kit(fakes, "DELETE", f"/v4/tags/502/subscribers/{sub['id']}")
    accounts = {a.provider: (a.external_id, dict(a.applied)) for a in ProviderAccount.objects.all()}
    jobs = Job.objects.count()

    monkeypatch.setenv("RECONCILE_CIRCLE_POLICY", "report")
    run, _ = reconcile("--provider", "circle")
    assert found(run) == {("ada@example.com", "missing_access", "spaces", "101", False)}
    assert run.counts["circle"]["policy"] == "report"

    run, out = reconcile("--provider", "kit", "--dry-run")
    assert run.dry_run and "dry run" in out
    assert found(run) == {("ada@example.com", "wrong_tags", "tags", "502", False)}

    assert Job.objects.count() == jobs
    assert {a.provider: (a.external_id, dict(a.applied)) for a in ProviderAccount.objects.all()} == accounts
    drain()
    assert 101 not in fakes.circle.member("ada@example.com")["space_ids"]
    assert 502 not in fakes.kit.subscriber("ada@example.com")["tag_ids"]

    monkeypatch.setenv("RECONCILE_CIRCLE_POLICY", "repair")
    run, _ = reconcile()
    assert {d[4] for d in found(run)} == {True} and len(found(run)) == 2
    drain()
    assert circle_matches_desired(fakes, "ada@example.com") and kit_matches_desired(fakes, "ada@example.com")


# ---- scope ---------------------------------------------------------------------------------

def test_customer_and_provider_scoping_look_up_one_person_without_paging_lists(client: Any, fakes: Any, rules: Any) -> None:
    bought(client, fakes, "ada@example.com", "bob@example.com")
    for email in ("ada@example.com", "bob@example.com"):
        circle(fakes, "DELETE", "/space_members", params={"email": email, "space_id": 102})
        kit(fakes, "DELETE", f"/v4/tags/501/subscribers/{fakes.kit.subscriber(email)['id']}")
    fakes.circle.calls.clear()
    fakes.kit.calls.clear()

    run, out = reconcile("--customer", "Ada@Example.com", "--provider", "kit", "--emails")
    assert "<ada@example.com>" in out
    assert found(run) == {("ada@example.com", "wrong_tags", "tags", "501", True)}
    assert fakes.circle.calls == []
    assert not [c for c in fakes.kit.calls if c.path == "/v4/subscribers" and "email_address" not in c.query]
    assert run.scope == {"customers": [Customer.objects.get(email="ada@example.com").pk]}

    bob = Customer.objects.get(email="bob@example.com")
    run, _ = reconcile("--customer", str(bob.pk), "--provider", "circle")
    assert found(run) == {("bob@example.com", "missing_access", "spaces", "102", True)}
    assert fakes.circle.calls_to(f"{CIRCLE}/space_members") == []  # no list paging
    assert len(fakes.circle.calls_to(f"{CIRCLE}/space_member")) == 3  # probes: spaces 101, 102, 103
    assert run.counts["circle"]["requests"] == len(fakes.circle.calls) == 1 + 3 + 1 + 1

    drain()
    assert circle_matches_desired(fakes, "bob@example.com") and kit_matches_desired(fakes, "ada@example.com")
    assert 102 not in fakes.circle.member("ada@example.com")["space_ids"]  # out of scope: untouched
    assert 501 not in fakes.kit.subscriber("bob@example.com")["tag_ids"]


def test_one_customer_lookup_finds_a_deleted_subscriber_by_id(client: Any, fakes: Any, rules: Any) -> None:
    bought(client, fakes, "ada@example.com")
    gone = fakes.kit.subscriber("ada@example.com")["id"]
    with fakes.kit._lock:
        del fakes.kit.subscribers[gone]
    fakes.kit.calls.clear()
    run, _ = reconcile("--customer", "ada@example.com", "--provider", "kit")
    assert found(run) == {("ada@example.com", "member_removed", "subscriber", str(gone), True)}
    assert [c.path for c in fakes.kit.calls] == ["/v4/tags", "/v4/custom_fields", f"/v4/subscribers/{gone}"]
    drain()
    assert kit_matches_desired(fakes, "ada@example.com")


# ---- quota, rate limit, errors -------------------------------------------------------------

def test_the_quota_reserve_stops_a_run_before_it_eats_into_delivery(client: Any, fakes: Any, rules: Any,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    bought(client, fakes, "ada@example.com")
    circle(fakes, "DELETE", "/space_members", params={"email": "ada@example.com", "space_id": 101})
    monkeypatch.setenv("CIRCLE_MONTHLY_QUOTA", "20")  # 20 % reserve: reconciliation may reach 16
    # Delivery's own requests (the purchase's sync) count too: top them up to 14 in all.
    count_request("circle", source="delivery", n=14 - used("circle"))
    fakes.circle.calls.clear()
    jobs = Job.objects.count()

    run, out = reconcile("--provider", "circle")

    assert run.status == ReconcileRun.QUOTA_RESERVE and "quota_reserve" in out
    assert len(fakes.circle.calls) == run.requests == 2
    assert ProviderUsage.objects.get(provider="circle", source="reconcile").requests == 2
    assert not Drift.objects.filter(run=run).exists() and Job.objects.count() == jobs

    monkeypatch.setenv("CIRCLE_MONTHLY_QUOTA", "100")
    run, _ = reconcile("--provider", "circle")
    assert run.status == ReconcileRun.SUCCEEDED and len(found(run)) == 1


def test_transient_errors_and_429s_are_retried_within_the_run(client: Any, fakes: Any, rules: Any) -> None:
    bought(client, fakes, "ada@example.com")
    kit(fakes, "DELETE", f"/v4/tags/501/subscribers/{fakes.kit.subscriber('ada@example.com')['id']}")
    fakes.circle.fail(500, count=1, path=f"{CIRCLE}/space_members")
    fakes.kit.fail(429, count=1, path="/v4/subscribers")
    run, _ = reconcile()
    assert run.status == ReconcileRun.SUCCEEDED
    assert found(run) == {("ada@example.com", "wrong_tags", "tags", "501", True)}
    assert [c.status for c in fakes.circle.calls_to(f"{CIRCLE}/space_members")][:2] == [500, 200]


def test_a_blocked_provider_or_a_missing_target_is_not_mistaken_for_drift(client: Any, fakes: Any, rules: Any) -> None:
    bought(client, fakes, "ada@example.com")
    ProviderState.objects.update_or_create(provider="kit", defaults={
        "status": ProviderState.PAUSED, "blocked_until": timezone.now() + timedelta(minutes=5)})
    with fakes.circle._lock:
        del fakes.circle.spaces[102]  # the rules name it; Circle no longer has it
    fakes.kit.calls.clear()
    run, out = reconcile()
    assert run.counts["kit"]["status"] == ReconcileRun.PROVIDER_BLOCKED and fakes.kit.calls == []
    assert run.status == ReconcileRun.PROVIDER_BLOCKED
    assert run.counts["circle"]["missing_targets"] == ["spaces:102"] and "spaces:102" in out
    assert found(run) == set()


def test_a_failed_provider_fails_the_run_and_the_command(client: Any, fakes: Any, rules: Any, settings: Any) -> None:
    bought(client, fakes, "ada@example.com")
    settings.CIRCLE_API_TOKEN = "wrong"
    with pytest.raises(Exception, match="circle_auth_failed"):
        reconcile("--provider", "circle")
    run = ReconcileRun.objects.get()
    assert run.status == ReconcileRun.FAILED and "circle_auth_failed" in run.error


def test_one_full_run_at_a_time_and_a_dead_one_is_marked_interrupted(fakes: Any, rules: Any) -> None:
    other = ReconcileRun.objects.create(provider="", trigger="schedule")
    run, out = reconcile("--provider", "circle")
    assert run.status == ReconcileRun.BUSY and fakes.circle.calls == [] and "busy" in out

    ReconcileRun.objects.filter(pk=other.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1))
    run, _ = reconcile("--provider", "circle")
    assert run.status == ReconcileRun.SUCCEEDED
    assert ReconcileRun.objects.get(pk=other.pk).status == ReconcileRun.INTERRUPTED


def test_the_caller_counts_what_was_sent_and_leaves_most_of_the_lane_to_delivery(
        db: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECONCILE_RATE_SHARE", "0.25")
    answers: list[Any] = [Deferred("circle", 2.0), ProviderError("circle", TRANSIENT, "http_502", "502"),
                          httpx.Response(200, json={})]

    class Client:
        provider = "circle"

        def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
            answer = answers.pop(0)
            if isinstance(answer, Exception):
                raise answer
            return answer

    sleeps: list[float] = []
    budget = Budget("circle")
    caller = Caller(Client(), budget, sleep=sleeps.append)  # type: ignore[arg-type]
    assert caller.get("/x").status_code == 200
    assert budget.spent == 2 and ProviderUsage.objects.get().requests == 2  # not the deferred one
    assert sleeps[0] == 2.0  # waited for the rate slot
    assert sleeps[-1] == pytest.approx(interval("circle") * 3)  # a quarter of the lane at most


def test_delivery_requests_count_towards_the_month_once_wired(db: None) -> None:
    count_delivery_request("circle")
    count_delivery_request("kit")  # no quota configured for Kit: not counted
    with reconciling():
        count_delivery_request("circle")  # reconciliation counts its own requests
    assert list(ProviderUsage.objects.values_list("provider", "source", "requests")) == [("circle", "delivery", 1)]


# ---- scale ---------------------------------------------------------------------------------

def seed_customers(fakes: Any, rules: Any, n: int) -> list[Customer]:
    """n community customers, already delivered: in the database and in the fake Circle."""
    customers = Customer.objects.bulk_create(Customer(email=f"c{i:04d}@example.com") for i in range(n))
    Entitlement.objects.bulk_create(Entitlement(customer=c, name="community", source_type="checkout_session",
                                                source_id=f"cs_{c.pk}", rules_version=rules) for c in customers)
    applied = {"spaces": [101, 102], "space_groups": [201], "access_groups": [301], "member_tags": [401]}
    accounts = []
    for c in customers:
        member = fakes.circle.add_member(c.email, space_ids=[101, 102], space_group_ids=[201],
                                         member_tag_ids=[401], access_group_ids=[301])
        accounts.append(ProviderAccount(customer=c, provider="circle", external_id=str(member["id"]),
                                        email=c.email, applied=applied))
    ProviderAccount.objects.bulk_create(accounts)
    return customers


def test_a_large_run_pages_lists_and_streams_customers(fakes: Any, rules: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    customers = seed_customers(fakes, rules, 300)
    circle(fakes, "DELETE", "/space_members", params={"email": "c0007@example.com", "space_id": 101})
    circle(fakes, "DELETE", "/access_groups/301/community_members", params={"email": "c0150@example.com"})
    circle(fakes, "POST", "/space_members", json={"email": "c0299@example.com", "space_id": 103})
    fakes.circle.calls.clear()
    del customers

    # Count Customer objects alive while customers are checked, with small chunks.
    monkeypatch.setattr(engine, "CHUNK", 50)
    live: weakref.WeakSet[Customer] = weakref.WeakSet()
    peak = [0]
    original_check = engine.ProviderPass.check

    def check(self: Any, reader: Any, customer: Customer, *args: Any) -> None:
        live.add(customer)
        if len(live) % 10 == 0:
            gc.collect()
        peak[0] = max(peak[0], len(live))
        original_check(self, reader, customer, *args)

    monkeypatch.setattr(engine.ProviderPass, "check", check)
    run, _ = reconcile("--provider", "circle")

    assert run.status == ReconcileRun.SUCCEEDED and run.counts["circle"]["checked"] == 300
    assert found(run) == {("c0007@example.com", "missing_access", "spaces", "101", True),
                          ("c0150@example.com", "missing_access", "access_groups", "301", True),
                          ("c0299@example.com", "unexpected_access", "spaces", "103", True)}
    # 3 pages each for spaces 101 and 102, the space group, the access group and the tag
    # stream, 1 for the empty space 103: 16 requests for 300 customers.
    assert run.requests == len(fakes.circle.calls) == 16
    assert peak[0] <= 2 * 50, peak[0]


def test_a_listing_longer_than_announced_fails_instead_of_comparing_part_of_it(
        fakes: Any, rules: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    seed_customers(fakes, rules, 60)
    monkeypatch.setattr(circle_reader, "PER_PAGE", 10)  # 6 pages a list
    monkeypatch.setattr(CircleReader, "_pages_left", lambda self, body: 0)  # "no more pages"
    with pytest.raises(Exception, match="reconcile_listing_incomplete"):
        reconcile("--provider", "circle")
    run = ReconcileRun.objects.get()
    assert run.status == ReconcileRun.FAILED and not Drift.objects.exists() and not Job.objects.exists()
    assert len(fakes.circle.calls_to(f"{CIRCLE}/space_members")) == 3 + 3  # first pages, then 2–4 of space 101


def test_the_quota_is_checked_for_the_whole_listing_before_paging_it(fakes: Any, rules: Any,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    seed_customers(fakes, rules, 250)
    monkeypatch.setenv("CIRCLE_MONTHLY_QUOTA", "15")  # may reach 12: 6 first pages + 10 more do not fit
    fakes.circle.calls.clear()
    run, _ = reconcile("--provider", "circle")
    assert run.status == ReconcileRun.QUOTA_RESERVE and "10 more" in run.error
    assert len(fakes.circle.calls) == 6  # the first page of each list, nothing after


# ---- schedule ------------------------------------------------------------------------------

def test_the_scheduled_sweep_runs_once_per_interval(fakes: Any, rules: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECONCILE_INTERVAL", "3600")
    first = run_scheduled()
    assert first is not None and first.trigger == "schedule" and first.status == ReconcileRun.SUCCEEDED
    assert set(first.counts) == {"circle", "kit"}
    assert run_scheduled() is None
    assert run_scheduled(timezone.now() + timedelta(seconds=3601)) is not None
    monkeypatch.setenv("RECONCILE_INTERVAL", "0")
    assert run_scheduled(timezone.now() + timedelta(days=2)) is None


def test_the_sweep_can_run_in_its_own_thread_and_stops_with_the_worker(
        fakes: Any, rules: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECONCILE_INTERVAL", "3600")
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(sweep, "reconcile", lambda **kw: calls.append(kw))
    stopping = threading.Event()
    thread = start_scheduled(stop=stopping)
    assert thread is not None
    thread.join(5)
    assert calls == [{"trigger": "schedule", "stop": stopping}]
    assert start_scheduled(stop=stopping) is None  # this interval is taken

    stopping.set()
    run = engine.reconcile(stop=stopping)
    assert run.status == ReconcileRun.INTERRUPTED and run.requests == 0
    assert {c["status"] for c in run.counts.values()} == {ReconcileRun.INTERRUPTED}

    class StopSoon(threading.Event):  # a shutdown arriving in the middle of a run
        def __init__(self) -> None:
            super().__init__()
            self.checks = 0

        def is_set(self) -> bool:
            self.checks += 1
            return self.checks > 2

    run = engine.reconcile(provider="circle", stop=StopSoon())
    assert run.status == ReconcileRun.INTERRUPTED and run.requests == 2


def test_old_runs_and_their_drift_are_pruned(db: None) -> None:
    customer = Customer.objects.create(email="old@example.com")
    old = ReconcileRun.objects.create(status=ReconcileRun.SUCCEEDED, started_at=timezone.now() - timedelta(days=91))
    new = ReconcileRun.objects.create(status=ReconcileRun.SUCCEEDED)
    for run in (old, new):
        Drift.objects.create(run=run, customer=customer, provider="kit", kind="wrong_tags", target_kind="tags", target_id="1")
    assert prune_runs(90) == 1
    assert list(ReconcileRun.objects.all()) == [new] and Drift.objects.get().run == new
