"""hubspot.sync against FakeHubSpot over real HTTP: directly, and through the ledger runner."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from frontdesk.connectors.http import AUTH, PERMANENT, RATE_LIMITED, TRANSIENT, ProviderError
from frontdesk.connectors.hubspot import setup, sync
from frontdesk.connectors.hubspot.client import HubSpotClient
from frontdesk.customers.access import find_or_create_customer
from frontdesk.customers.models import Customer, Entitlement, ProviderAccount
from frontdesk.fakes.hubspot import FakeHubSpot
from frontdesk.ledger.enqueue import enqueue
from frontdesk.ledger.models import Attempt, Job, JobState, ProviderState
from frontdesk.ledger.worker import Worker

from .conftest import drain

pytestmark = pytest.mark.django_db
TOKEN = "hubspot-test-token"
CONTACTS = "/crm/v3/objects/contacts"



def _grant(customer: Any, names: set[str], source_type: str, source_id: str, rules: Any, event_id: str) -> None:
    """Active entitlements for a customer, as processing would leave them."""
    for name in sorted(names):
        Entitlement.objects.update_or_create(
            customer=customer, name=name, source_id=source_id,
            defaults={"source_type": source_type, "rules_version": rules, "event_id": event_id,
                      "status": Entitlement.ACTIVE})

@pytest.fixture
def hubspot(settings: Any) -> Iterator[FakeHubSpot]:
    fake = FakeHubSpot(token=TOKEN)
    for name, spec in setup.PROPERTIES.items():  # what ensure_properties would create
        fake.add_property(name, spec["label"], spec["type"], spec["fieldType"], spec.get("options"))
    fake.start()
    settings.HUBSPOT_ACCESS_TOKEN = TOKEN
    settings.HUBSPOT_API_URL = fake.url
    settings.PROVIDERS = {**settings.PROVIDERS,
                          "hubspot": {"rate_limit": (1000, 1.0), "retry_max_age": 3600.0, "rate_limit_wait": 0.3}}
    yield fake
    fake.stop()


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """hubspot.sync is not wired into the handlers yet: add it for these tests."""
    from frontdesk.ledger import handlers

    entry = {"hubspot.sync": "frontdesk.connectors.hubspot.sync.run"}
    monkeypatch.setattr(handlers, "HANDLERS", {**handlers.HANDLERS, **entry})
    handlers.handler_for.cache_clear()
    yield
    handlers.handler_for.cache_clear()


def customer(rules: Any, email: str = "ada@example.com", name: str = "Ada Lovelace",
             plans: tuple[str, ...] = ("community",)) -> Customer:
    person = find_or_create_customer(email, None, name)
    _grant(person, set(plans), "checkout_session", f"cs_{email}", rules, "evt_test")
    return person


_jobs = iter(range(1, 10_000))


def job_for(person: Customer) -> Job:
    job = enqueue("hubspot.sync", "hubspot", idempotency_key=f"hubspot:test:{next(_jobs)}",
                  correlation_id="t", customer_id=person.pk)
    assert job is not None
    return job


def crm(props: dict[str, Any]) -> tuple[str, str, str]:
    return props["frontdesk_plan"], props["frontdesk_access"], props["frontdesk_status"]


# ---- the sync, called directly ----------------------------------------------------------------

def test_the_first_sync_creates_the_contact_with_plan_access_and_status(hubspot: FakeHubSpot, rules: Any) -> None:
    person = customer(rules)
    sync.run(job_for(person))

    contact = hubspot.contact("ada@example.com")
    assert contact is not None
    props = contact["properties"]
    assert (props["email"], props["firstname"]) == ("ada@example.com", "Ada")
    assert crm(props) == ("community", "true", "active")
    assert [(c.method, c.path.split("/")[-1], c.status) for c in hubspot.calls] == [
        ("GET", "ada@example.com", 404), ("POST", "contacts", 201)]
    assert hubspot.calls[0].query["idProperty"] == ["email"]
    assert {c.auth_scheme for c in hubspot.calls} == {"Bearer"}
    account = ProviderAccount.objects.get(customer=person, provider="hubspot")
    assert account.external_id == contact["id"]
    assert account.applied["properties"] == {"email": "ada@example.com", "firstname": "Ada",
                                             "frontdesk_plan": "community", "frontdesk_access": "true",
                                             "frontdesk_status": "active"}


def test_a_second_run_makes_no_call_at_all(hubspot: FakeHubSpot, rules: Any) -> None:
    person = customer(rules)
    sync.run(job_for(person))
    before = len(hubspot.calls)
    sync.run(job_for(person))
    assert len(hubspot.calls) == before
    assert len(hubspot.contacts) == 1


def test_a_plan_change_sends_one_patch_with_only_what_changed(hubspot: FakeHubSpot, rules: Any) -> None:
    person = customer(rules)
    sync.run(job_for(person))
    contact_id = hubspot.contact("ada@example.com")["id"]
    _grant(person, {"course"}, "checkout_session", "cs_course", rules, "evt_2")
    hubspot.calls.clear()

    sync.run(job_for(person))
    assert [(c.method, c.path, c.body) for c in hubspot.calls] == [
        ("PATCH", f"{CONTACTS}/{contact_id}", {"properties": {"frontdesk_plan": "community;course"}})]
    assert hubspot.contact("ada@example.com")["properties"]["frontdesk_plan"] == "community;course"

    # Everything revoked: access and status follow, the plan is cleared.
    Entitlement.objects.filter(customer=person).update(status=Entitlement.REVOKED)
    sync.run(job_for(person))
    props = hubspot.contact("ada@example.com")["properties"]
    assert crm(props) == ("", "false", "canceled")
    assert len(hubspot.contacts) == 1


def test_an_existing_contact_is_updated_not_duplicated(hubspot: FakeHubSpot, rules: Any) -> None:
    existing = hubspot.add_contact("Ada@Example.com", {"firstname": "Adele", "lastname": "L.",
                                                        "frontdesk_plan": "old"})
    person = customer(rules)
    sync.run(job_for(person))

    assert len(hubspot.contacts) == 1
    assert not hubspot.calls_to(CONTACTS, "POST")
    patch = hubspot.calls_to(CONTACTS, "PATCH")
    assert len(patch) == 1 and patch[0].path == f"{CONTACTS}/{existing['id']}"
    props = hubspot.contact("ada@example.com")["properties"]
    assert crm(props) == ("community", "true", "active")
    assert (props["firstname"], props["lastname"]) == ("Adele", "L.")  # a name set in HubSpot is kept
    assert ProviderAccount.objects.get(customer=person, provider="hubspot").external_id == existing["id"]


def test_an_existing_contact_that_already_matches_gets_no_write(hubspot: FakeHubSpot, rules: Any) -> None:
    hubspot.add_contact("ada@example.com", {"firstname": "Ada", "frontdesk_plan": "community",
                                            "frontdesk_access": "true", "frontdesk_status": "active"})
    sync.run(job_for(customer(rules)))
    assert [c.method for c in hubspot.calls] == ["GET"]


def test_a_409_on_create_rereads_the_contact_and_updates_it(hubspot: FakeHubSpot, rules: Any) -> None:
    # The contact appears between the lookup and the create (another integration, or our own
    # earlier create whose answer was lost).
    existing = hubspot.add_contact("ada@example.com", {"frontdesk_plan": "old"})
    hubspot.fail(404, count=1, method="GET", path=f"{CONTACTS}/ada@example.com")
    person = customer(rules)
    sync.run(job_for(person))

    assert [(c.method, c.status) for c in hubspot.calls] == [("GET", 404), ("POST", 409), ("GET", 200), ("PATCH", 200)]
    assert hubspot.calls[2].path == f"{CONTACTS}/{existing['id']}"
    assert len(hubspot.contacts) == 1
    assert hubspot.contact("ada@example.com")["properties"]["frontdesk_plan"] == "community"
    assert ProviderAccount.objects.get(customer=person, provider="hubspot").external_id == existing["id"]


def test_a_contact_deleted_in_hubspot_is_found_or_created_again(hubspot: FakeHubSpot, rules: Any) -> None:
    person = customer(rules)
    sync.run(job_for(person))
    hubspot.contacts.clear()
    _grant(person, {"course"}, "checkout_session", "cs_course", rules, "evt_2")
    sync.run(job_for(person))
    contact = hubspot.contact("ada@example.com")
    assert contact["properties"]["frontdesk_plan"] == "community;course"
    assert ProviderAccount.objects.get(customer=person, provider="hubspot").external_id == contact["id"]


def test_no_name_means_no_firstname(hubspot: FakeHubSpot, rules: Any) -> None:
    sync.run(job_for(customer(rules, name="")))
    assert "firstname" not in hubspot.calls_to(CONTACTS, "POST")[0].body["properties"]


def test_a_missing_token_is_an_auth_failure(settings: Any, rules: Any) -> None:
    settings.HUBSPOT_ACCESS_TOKEN = ""
    with pytest.raises(ProviderError) as caught:
        sync.run(job_for(customer(rules)))
    assert (caught.value.kind, caught.value.reason) == (AUTH, "hubspot_token_missing")


def test_the_client_defaults_to_hubspots_api_url(settings: Any) -> None:
    settings.HUBSPOT_ACCESS_TOKEN = "pat-na1-x"
    del settings.HUBSPOT_API_URL
    with HubSpotClient.from_settings() as client:
        assert str(client.http.base_url) == "https://api.hubapi.com"
        assert client.http.headers["Authorization"] == "Bearer pat-na1-x"


# ---- error classification ----------------------------------------------------------------------

def failure(hubspot: FakeHubSpot, rules: Any, email: str = "ada@example.com") -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        sync.run(job_for(customer(rules, email=email)))
    return caught.value


def test_a_missing_property_is_permanent_with_its_reason(hubspot: FakeHubSpot, rules: Any) -> None:
    del hubspot.properties["frontdesk_status"]
    error = failure(hubspot, rules)
    assert (error.kind, error.reason, error.status) == (PERMANENT, "hubspot_property_missing", 400)
    assert "frontdesk_status" in error.message and "correlationId" in error.message


def test_an_invalid_email_is_permanent_and_redacted(hubspot: FakeHubSpot, rules: Any) -> None:
    error = failure(hubspot, rules, email="someone@invalid.example")
    assert (error.kind, error.reason) == (PERMANENT, "hubspot_invalid_email")
    assert "someone@invalid.example" not in error.message


def test_the_daily_limit_waits_an_hour() -> None:
    with FakeHubSpot(daily_limit=0) as fake, HubSpotClient(fake.url, {"Authorization": f"Bearer {TOKEN}"}) as client:
        with pytest.raises(ProviderError) as caught:
            client.list_properties()
    error = caught.value
    assert (error.kind, error.reason, error.retry_after) == (RATE_LIMITED, "hubspot_daily_limit", 3600.0)


@pytest.mark.parametrize(("status", "headers", "reason", "wait"), [
    (423, None, "hubspot_locked", 2.0), (477, {"Retry-After": "120"}, "hubspot_migration_in_progress", 120.0)])
def test_locked_and_migrating_accounts_are_transient(status: int, headers: dict[str, str] | None, reason: str,
                                                     wait: float) -> None:
    with FakeHubSpot() as fake, HubSpotClient(fake.url, {"Authorization": f"Bearer {TOKEN}"}) as client:
        fake.fail(status, headers=headers)
        with pytest.raises(ProviderError) as caught:
            client.list_properties()
    assert (caught.value.kind, caught.value.reason, caught.value.retry_after) == (TRANSIENT, reason, wait)


def test_a_missing_scope_is_an_auth_failure(hubspot: FakeHubSpot, rules: Any) -> None:
    hubspot.configure(scopes=["crm.objects.contacts.read"])
    error = failure(hubspot, rules)
    assert (error.kind, error.reason, error.status) == (AUTH, "hubspot_missing_scopes", 403)


# ---- through the ledger runner -------------------------------------------------------------------

def test_the_runner_runs_hubspot_sync_jobs(hubspot: FakeHubSpot, rules: Any, runner: None) -> None:
    job = job_for(customer(rules))
    drain()
    job.refresh_from_db()
    assert (job.state, job.attempts) == (JobState.SUCCEEDED, 1)
    assert hubspot.contact("ada@example.com")["properties"]["frontdesk_status"] == "active"
    assert list(Attempt.objects.filter(job=job).values_list("outcome", "http_status")) == [("succeeded", 201)]


def test_a_429_is_retried_later(hubspot: FakeHubSpot, rules: Any, runner: None) -> None:
    hubspot.fail(429, count=1, path=CONTACTS)
    job = job_for(customer(rules))
    drain(timeout=30)
    job.refresh_from_db()
    assert job.state == JobState.SUCCEEDED and job.attempts == 2
    attempts = Attempt.objects.filter(job=job).order_by("number")
    outcomes = list(attempts.values_list("outcome", "http_status", "reason_code"))
    assert outcomes == [("transient", 429, "rate_limited"), ("succeeded", 201, "")]
    assert len(hubspot.contacts) == 1
    assert ProviderState.objects.get(provider="hubspot").status == "ok"


def test_a_missing_property_sends_the_job_to_review(hubspot: FakeHubSpot, rules: Any, runner: None) -> None:
    del hubspot.properties["frontdesk_access"]
    job = job_for(customer(rules))
    drain()
    job.refresh_from_db()
    assert (job.state, job.reason_code) == (JobState.NEEDS_REVIEW, "hubspot_property_missing")
    assert "ada@example.com" not in job.last_error
    assert hubspot.contacts == {}


def test_an_invalid_token_pauses_the_provider_instead_of_filling_review(
        hubspot: FakeHubSpot, rules: Any, runner: None, settings: Any) -> None:
    settings.HUBSPOT_ACCESS_TOKEN = "wrong-token"
    jobs = [job_for(customer(rules, email=f"{n}@example.com")) for n in ("a", "b")]
    worker = Worker(concurrency=1, worker_id="w")
    for _ in range(6):
        worker.run_one()
    state = ProviderState.objects.get(provider="hubspot")
    assert (state.status, state.reason_code) == ("paused", "hubspot_auth_failed")
    for job in jobs:
        job.refresh_from_db()
        assert job.state in (JobState.QUEUED, JobState.RETRYING) and job.attempts == 0
    assert not Job.objects.filter(state=JobState.NEEDS_REVIEW).exists()
    assert hubspot.contacts == {}
    # The token is fixed: the lane resumes by itself once the pause ends.
    settings.HUBSPOT_ACCESS_TOKEN = TOKEN
    ProviderState.objects.filter(provider="hubspot").update(blocked_until=state.updated_at)
    drain()
    assert {j.state for j in Job.objects.filter(pk__in=[j.pk for j in jobs])} == {JobState.SUCCEEDED}
    assert len(hubspot.contacts) == 2


# ---- properties setup ----------------------------------------------------------------------------

def test_check_and_ensure_properties(settings: Any) -> None:
    with FakeHubSpot() as fake:
        settings.HUBSPOT_ACCESS_TOKEN, settings.HUBSPOT_API_URL = TOKEN, fake.url
        fake.add_property("frontdesk_plan")
        fake.add_property("frontdesk_access")  # made by hand as text, not a checkbox
        assert setup.check_properties() == {"present": ["frontdesk_plan", "frontdesk_access"], "created": [],
                                            "missing": ["frontdesk_status"], "wrong_type": ["frontdesk_access"]}
        assert "frontdesk_status" not in fake.properties  # checking never writes
        assert setup.ensure_properties()["created"] == ["frontdesk_status"]
        assert fake.properties["frontdesk_status"]["type"] == "string"
        assert setup.ensure_properties()["created"] == []  # idempotent
        del fake.properties["frontdesk_access"]
        setup.ensure_properties()
        created = fake.properties["frontdesk_access"]
        assert (created["type"], created["fieldType"], [o["value"] for o in created["options"]]) == (
            "bool", "booleancheckbox", ["true", "false"])


def test_creating_properties_without_the_schema_scope_is_an_auth_failure(settings: Any) -> None:
    with FakeHubSpot(scopes=("crm.objects.contacts.read", "crm.objects.contacts.write")) as fake:
        settings.HUBSPOT_ACCESS_TOKEN, settings.HUBSPOT_API_URL = TOKEN, fake.url
        assert setup.check_properties()["missing"] == list(setup.PROPERTIES)
        with pytest.raises(ProviderError) as caught:
            setup.ensure_properties()
    assert (caught.value.kind, caught.value.reason) == (AUTH, "hubspot_missing_scopes")
