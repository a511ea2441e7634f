"""FakeHubSpot against HubSpot's documented CRM API v3, over real HTTP (no Django needed)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import pytest

from frontdesk.fakes.hubspot import FakeHubSpot

TOKEN = "hubspot-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
CONTACTS = "/crm/v3/objects/contacts"
PROPERTIES = "/crm/v3/properties/contacts"
ACCESS_OPTIONS = [{"label": "Yes", "value": "true"}, {"label": "No", "value": "false"}]


@pytest.fixture
def hubspot() -> Iterator[FakeHubSpot]:
    with FakeHubSpot() as fake:
        fake.add_property("frontdesk_plan")
        fake.add_property("frontdesk_status")
        fake.add_property("frontdesk_access", type="bool", field_type="booleancheckbox", options=ACCESS_OPTIONS)
        yield fake


@pytest.fixture
def api(hubspot: FakeHubSpot) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=hubspot.url, headers=AUTH, timeout=5) as client:
        yield client


def create(api: httpx.Client, **properties: str) -> httpx.Response:
    return api.post(CONTACTS, json={"properties": properties})


def error_shape(response: httpx.Response) -> tuple[int, str, str]:
    body = response.json()
    assert body["status"] == "error"
    assert body["correlationId"] == response.headers["X-HubSpot-Correlation-Id"]
    return response.status_code, body["category"], body["message"]


# ---- auth -----------------------------------------------------------------------------------

@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Token {TOKEN}"},
                                     {"Authorization": f"Basic {TOKEN}"}])
def test_it_wants_the_private_app_token_as_a_bearer(hubspot: FakeHubSpot, headers: dict[str, str]) -> None:
    r = httpx.get(hubspot.url + PROPERTIES, headers=headers)
    status, category, message = error_shape(r)
    assert (status, category) == (401, "INVALID_AUTHENTICATION")
    assert message.startswith("Authentication credentials not found.")
    assert hubspot.daily_used == 0  # a refused request is not counted


def test_it_accepts_the_token(hubspot: FakeHubSpot, api: httpx.Client) -> None:
    assert api.get(PROPERTIES).status_code == 200
    assert hubspot.calls[-1].auth_scheme == "Bearer"


def test_a_missing_scope_is_a_403_naming_it(hubspot: FakeHubSpot, api: httpx.Client) -> None:
    hubspot.configure(scopes=["crm.objects.contacts.read"])
    r = create(api, email="a@example.com")
    assert error_shape(r)[:2] == (403, "MISSING_SCOPES")
    assert r.json()["errors"][0]["context"]["requiredGranularScopes"] == ["crm.objects.contacts.write"]
    assert api.get(f"{CONTACTS}/a@example.com", params={"idProperty": "email"}).status_code == 404
    hubspot.reset()
    assert create(api, email="a@example.com").status_code == 201  # reset() restores the scopes


# ---- contacts -------------------------------------------------------------------------------

def test_it_creates_a_contact_and_reads_it_back_by_email(hubspot: FakeHubSpot, api: httpx.Client) -> None:
    r = create(api, email="Ada@Example.com", firstname="Ada", frontdesk_plan="community",
               frontdesk_access="true", frontdesk_status="active")
    assert r.status_code == 201
    made = r.json()
    assert made["id"] == "101" and made["properties"]["hs_object_id"] == "101"
    assert made["properties"]["frontdesk_plan"] == "community"
    assert {"createdAt", "updatedAt", "archived"} <= set(made)

    read = api.get(f"{CONTACTS}/ada@example.com", params={"idProperty": "email",
                                                          "properties": "email,frontdesk_plan,lastname,nope"})
    assert read.status_code == 200
    props = read.json()["properties"]
    assert props["email"] == "Ada@Example.com" and props["frontdesk_plan"] == "community"
    assert props["lastname"] is None  # known but unset: null
    assert "nope" not in props  # unknown names are ignored
    assert set(api.get(f"{CONTACTS}/101").json()["properties"]) >= {"email", "firstname", "lastname", "createdate"}
    assert hubspot.contact("ADA@example.com")["properties"]["frontdesk_status"] == "active"
    assert [c.changed for c in hubspot.calls] == [True, False, False]


def test_an_email_in_the_path_may_be_url_encoded(api: httpx.Client) -> None:
    create(api, email="a+b@example.com")
    assert api.get(f"{CONTACTS}/a%2Bb%40example.com", params={"idProperty": "email"}).status_code == 200


def test_an_unknown_contact_is_a_404(api: httpx.Client) -> None:
    for r in (api.get(f"{CONTACTS}/nobody@example.com", params={"idProperty": "email"}),
              api.get(f"{CONTACTS}/999"), api.patch(f"{CONTACTS}/999", json={"properties": {}})):
        assert error_shape(r) == (404, "OBJECT_NOT_FOUND", "resource not found")


def test_a_second_contact_with_the_same_email_is_a_409(hubspot: FakeHubSpot, api: httpx.Client) -> None:
    first = create(api, email="a@example.com", frontdesk_plan="one").json()
    r = create(api, email="A@EXAMPLE.COM", frontdesk_plan="two")
    assert error_shape(r) == (409, "CONFLICT", f"Contact already exists. Existing ID: {first['id']}")
    assert len(hubspot.contacts) == 1
    assert hubspot.contact("a@example.com")["properties"]["frontdesk_plan"] == "one"
    assert hubspot.calls[-1].changed is False


def test_patch_overwrites_clears_and_reports_no_change_on_a_repeat(hubspot: FakeHubSpot, api: httpx.Client) -> None:
    contact_id = create(api, email="a@example.com", frontdesk_plan="one", firstname="Ann").json()["id"]
    r = api.patch(f"{CONTACTS}/{contact_id}", json={"properties": {"frontdesk_plan": "two", "firstname": ""}})
    assert r.status_code == 200 and r.json()["properties"]["frontdesk_plan"] == "two"
    again = api.patch(f"{CONTACTS}/a@example.com", params={"idProperty": "email"},
                      json={"properties": {"frontdesk_plan": "two"}})
    assert again.status_code == 200
    assert [c.changed for c in hubspot.calls] == [True, True, False]
    seen = hubspot.contact("a@example.com")["properties"]
    assert (seen["frontdesk_plan"], seen["firstname"]) == ("two", "")
    assert seen["lastmodifieddate"] >= seen["createdate"]


def test_patching_to_another_contacts_email_is_a_409(api: httpx.Client) -> None:
    create(api, email="a@example.com")
    b = create(api, email="b@example.com").json()["id"]
    assert api.patch(f"{CONTACTS}/{b}", json={"properties": {"email": "A@example.com"}}).status_code == 409


# ---- validation -----------------------------------------------------------------------------

def validation_items(response: httpx.Response) -> list[dict[str, object]]:
    status, category, message = error_shape(response)
    assert (status, category) == (400, "VALIDATION_ERROR")
    prefix = "Property values were not valid: "
    assert message.startswith(prefix)
    return json.loads(message[len(prefix):])


def test_an_unknown_property_is_refused_and_nothing_is_written(hubspot: FakeHubSpot, api: httpx.Client) -> None:
    items = validation_items(create(api, email="a@example.com", frontdesk_tier="gold"))
    assert [(i["error"], i["name"], i["isValid"]) for i in items] == [
        ("PROPERTY_DOESNT_EXIST", "frontdesk_tier", False)]
    assert items[0]["message"] == 'Property "frontdesk_tier" does not exist'
    assert hubspot.contacts == {}


@pytest.mark.parametrize("email", ["nope", "a@b", "someone@invalid.example"])
def test_an_invalid_email_is_refused(hubspot: FakeHubSpot, api: httpx.Client, email: str) -> None:
    items = validation_items(create(api, email=email))
    assert [(i["error"], i["name"]) for i in items] == [("INVALID_EMAIL", "email")]
    assert items[0]["message"] == f"Email address {email} is invalid"
    assert hubspot.contacts == {}


def test_values_must_fit_the_property(api: httpx.Client) -> None:
    items = validation_items(create(api, email="a@example.com", frontdesk_access="maybe", createdate="1"))
    assert sorted(i["error"] for i in items) == ["INVALID_OPTION", "READ_ONLY_VALUE"]
    assert create(api, email="a@example.com", frontdesk_access="false").status_code == 201


def test_a_malformed_body_is_a_400(api: httpx.Client) -> None:
    r = api.post(CONTACTS, content=b"{nope", headers={"Content-Type": "application/json"})
    assert error_shape(r)[:2] == (400, "VALIDATION_ERROR")
    assert error_shape(api.post(CONTACTS, json={"properties": ["email"]}))[:2] == (400, "VALIDATION_ERROR")


# ---- properties -----------------------------------------------------------------------------

def test_it_lists_default_and_custom_contact_properties(api: httpx.Client) -> None:
    results = {p["name"]: p for p in api.get(PROPERTIES).json()["results"]}
    assert {"email", "firstname", "frontdesk_plan", "frontdesk_access"} <= set(results)
    assert results["email"]["hubspotDefined"] is True
    assert results["frontdesk_access"]["type"] == "bool"
    assert [o["value"] for o in results["frontdesk_access"]["options"]] == ["true", "false"]
    assert api.get(f"{PROPERTIES}/frontdesk_plan").json()["name"] == "frontdesk_plan"
    assert error_shape(api.get(f"{PROPERTIES}/nope"))[:2] == (404, "OBJECT_NOT_FOUND")


def test_it_creates_a_property_once(hubspot: FakeHubSpot, api: httpx.Client) -> None:
    spec = {"name": "frontdesk_tier", "label": "Tier", "type": "string", "fieldType": "text",
            "groupName": "contactinformation"}
    r = api.post(PROPERTIES, json=spec)
    assert r.status_code == 201 and r.json()["name"] == "frontdesk_tier"
    again = api.post(PROPERTIES, json=spec)
    assert error_shape(again) == (409, "OBJECT_ALREADY_EXISTS", "Property named 'frontdesk_tier' already exists.")
    assert [c.changed for c in hubspot.calls] == [True, False]
    assert create(api, email="a@example.com", frontdesk_tier="gold").status_code == 201


@pytest.mark.parametrize("change", [
    {"label": ""}, {"name": "Bad Name"}, {"type": "text"}, {"fieldType": "select"},
    {"groupName": "nowhere"}, {"type": "bool", "fieldType": "booleancheckbox"},
])
def test_an_invalid_property_definition_is_a_400(hubspot: FakeHubSpot, api: httpx.Client,
                                                  change: dict[str, str]) -> None:
    spec = {"name": "frontdesk_tier", "label": "Tier", "type": "string", "fieldType": "text",
            "groupName": "contactinformation", **change}
    assert error_shape(api.post(PROPERTIES, json=spec))[:2] == (400, "VALIDATION_ERROR")
    assert "frontdesk_tier" not in hubspot.properties


def test_creating_properties_needs_the_schema_write_scope(hubspot: FakeHubSpot, api: httpx.Client) -> None:
    hubspot.configure(scopes=["crm.objects.contacts.read", "crm.objects.contacts.write"])
    assert api.get(PROPERTIES).status_code == 200  # reading works with the contacts scope
    spec = {"name": "x_y", "label": "X", "type": "string", "fieldType": "text", "groupName": "contactinformation"}
    assert error_shape(api.post(PROPERTIES, json=spec))[:2] == (403, "MISSING_SCOPES")


# ---- limits ---------------------------------------------------------------------------------

def test_the_burst_limit_answers_the_documented_429() -> None:
    with FakeHubSpot(rate_limit=(2, 0.5)) as fake, httpx.Client(base_url=fake.url, headers=AUTH) as api:
        first = api.get(PROPERTIES)
        assert (first.headers["X-HubSpot-RateLimit-Max"], first.headers["X-HubSpot-RateLimit-Remaining"],
                first.headers["X-HubSpot-RateLimit-Interval-Milliseconds"]) == ("2", "1", "500")
        assert api.get(PROPERTIES).headers["X-HubSpot-RateLimit-Remaining"] == "0"
        limited = api.get(PROPERTIES)
        assert limited.status_code == 429
        body = limited.json()
        assert (body["status"], body["errorType"], body["policyName"]) == (
            "error", "RATE_LIMIT", "TEN_SECONDLY_ROLLING")
        assert body["message"] == "You have reached your ten_secondly_rolling limit."
        assert "Retry-After" not in limited.headers  # not documented for HubSpot's 429
        assert fake.calls[-1].fault == "rate_limit"
        time.sleep(0.55)
        assert api.get(PROPERTIES).status_code == 200  # refused requests do not count


def test_the_daily_limit_answers_429_with_policy_daily() -> None:
    with FakeHubSpot(daily_limit=1) as fake, httpx.Client(base_url=fake.url, headers=AUTH) as api:
        ok = api.get(PROPERTIES)
        daily = (ok.headers["X-HubSpot-RateLimit-Daily"], ok.headers["X-HubSpot-RateLimit-Daily-Remaining"])
        assert daily == ("1", "0")
        limited = api.get(PROPERTIES)
        assert limited.status_code == 429
        body = limited.json()
        assert (body["policyName"], body["message"]) == ("DAILY", "You have reached your daily limit.")
        fake.reset()
        assert api.get(PROPERTIES).status_code == 200


def test_a_429_fault_has_the_documented_body(hubspot: FakeHubSpot, api: httpx.Client) -> None:
    hubspot.fail(429, count=1, path=CONTACTS)
    r = create(api, email="a@example.com")
    assert (r.status_code, r.json()["errorType"]) == (429, "RATE_LIMIT")
    assert hubspot.calls[-1].fault == "status"
    assert hubspot.contacts == {}
    assert create(api, email="a@example.com").status_code == 201


# ---- control API ----------------------------------------------------------------------------

def test_seed_inspect_and_reset_over_http() -> None:
    seed = {"properties": ["frontdesk_plan"],
            "contacts": [{"email": "seed@example.com", "properties": {"frontdesk_plan": "x"}, "id": 9}]}
    with FakeHubSpot(seed=seed) as fake:
        assert httpx.get(fake.url + "/_fake/contact", params={"email": "SEED@example.com"}).json()["id"] == "9"
        made = httpx.post(fake.url + "/_fake/seed", json={"contacts": [{"email": "more@example.com"}]})
        assert made.status_code == 201
        assert httpx.get(fake.url + "/_fake/contact", params={"email": "more@example.com"}).status_code == 200
        state = httpx.get(fake.url + "/_fake/state").json()
        assert [p["name"] for p in state["properties"]] == ["frontdesk_plan"]
        httpx.post(fake.url + "/_fake/reset")
        assert fake.contact("more@example.com") is None
        assert fake.contact("seed@example.com")["properties"]["frontdesk_plan"] == "x"
        assert httpx.get(fake.url + "/_fake/contact", params={"email": "nobody@example.com"}).status_code == 404
        assert httpx.post(fake.url + "/_fake/config", json={"daily_limit": 5}).json()["daily_limit"] == 5
