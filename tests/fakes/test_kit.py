"""FakeKit against shared/providers/kit.md, over real HTTP."""

from __future__ import annotations

import time

import httpx
import pytest

from frontdesk.fakes import FakeKit

from .conftest import KIT_AUTH


@pytest.fixture
def account(kit: FakeKit) -> FakeKit:
    kit.add_tag(1, "paid")
    kit.add_tag(2, "vip")
    kit.add_sequence(3, "Welcome")
    kit.add_custom_field("last_name", "Last Name")
    return kit


# ---- auth and errors -----------------------------------------------------------------------

def test_it_rejects_an_unknown_credential(kit: FakeKit) -> None:
    for headers in ({}, {"X-Kit-Api-Key": "wrong"}, {"Authorization": "Bearer wrong"}):
        r = httpx.get(kit.url + "/v4/tags", headers=headers)
        assert (r.status_code, r.json()) == (401, {"errors": ["The access token is invalid"]})


def test_it_accepts_an_api_key_and_an_oauth_token(kit: FakeKit) -> None:
    assert httpx.get(kit.url + "/v4/tags", headers=KIT_AUTH).status_code == 200
    assert httpx.get(kit.url + "/v4/tags",
                     headers={"Authorization": "Bearer oauth-token"}).status_code == 200
    assert [c.auth_scheme for c in kit.calls] == ["X-Kit-Api-Key", "Bearer"]


def test_it_returns_not_found_for_unknown_routes(kit_api: httpx.Client) -> None:
    r = kit_api.post("/v4/subscribers/unsubscribe", json={"email_address": "a@example.com"})
    assert (r.status_code, r.json()) == (404, {"errors": ["Not Found"]})


def test_it_rejects_purchases_and_bulk_with_an_api_key(kit_api: httpx.Client,
                                                       kit: FakeKit) -> None:
    assert kit_api.post("/v4/purchases", json={}).status_code == 403
    assert kit_api.post("/v4/bulk/tags/subscribers", json={}).status_code == 403
    oauth = httpx.post(kit.url + "/v4/purchases", json={},
                       headers={"Authorization": "Bearer oauth-token"})
    assert oauth.status_code == 501  # accepted credential; purchases themselves are not faked


# ---- subscribers ---------------------------------------------------------------------------

def test_it_creates_then_updates_only_the_first_name(account: FakeKit,
                                                     kit_api: httpx.Client) -> None:
    first = kit_api.post("/v4/subscribers", json={"email_address": "a@example.com",
                                                  "first_name": "Ann",
                                                  "fields": {"last_name": "Lee"}})
    assert first.status_code == 201
    sub = first.json()["subscriber"]
    assert {k: sub[k] for k in ("first_name", "email_address", "state", "fields")} == {
        "first_name": "Ann", "email_address": "a@example.com", "state": "active",
        "fields": {"last_name": "Lee"}}
    again = kit_api.post("/v4/subscribers", json={"email_address": "A@Example.com",
                                                  "first_name": "Anna", "state": "cancelled",
                                                  "fields": {"last_name": "Other"}})
    assert again.status_code == 200
    assert again.json()["subscriber"]["id"] == sub["id"]
    seen = account.subscriber("a@example.com")
    assert (seen["first_name"], seen["state"], seen["fields"]) == (
        "Anna", "active", {"last_name": "Lee"})
    same = kit_api.post("/v4/subscribers", json={"email_address": "a@example.com",
                                                 "first_name": "Anna"})
    assert same.status_code == 200
    assert [c.changed for c in account.calls] == [True, True, False]


@pytest.mark.parametrize("email", ["nope", "a@b", "someone@invalid.example"])
def test_it_rejects_an_invalid_email(kit_api: httpx.Client, email: str) -> None:
    r = kit_api.post("/v4/subscribers", json={"email_address": email})
    assert (r.status_code, r.json()) == (422, {"errors": ["Email address is invalid"]})


def test_it_ignores_unknown_fields_with_warnings(account: FakeKit,
                                                 kit_api: httpx.Client) -> None:
    r = kit_api.post("/v4/subscribers", json={"email_address": "a@example.com",
                                              "fields": {"last_name": "Lee", "shoe": "42"}})
    assert r.status_code == 201
    assert r.json()["subscriber"]["fields"] == {"last_name": "Lee"}
    assert len(r.json()["warnings"]) == 1 and "shoe" in r.json()["warnings"][0]


def test_it_answers_202_for_more_than_ten_fields(account: FakeKit,
                                                 kit_api: httpx.Client) -> None:
    fields = {f"f{i}": "x" for i in range(11)}
    r = kit_api.post("/v4/subscribers", json={"email_address": "a@example.com",
                                              "fields": fields})
    assert r.status_code == 202


def test_it_finds_by_email_among_active_subscribers_by_default(kit: FakeKit,
                                                               kit_api: httpx.Client) -> None:
    kit.add_subscriber("gone@example.com", state="cancelled")
    params = {"email_address": "GONE@example.com"}
    assert kit_api.get("/v4/subscribers", params=params).json()["subscribers"] == []
    found = kit_api.get("/v4/subscribers", params={**params, "status": "all"}).json()
    assert [s["state"] for s in found["subscribers"]] == ["cancelled"]
    unknown = kit_api.get("/v4/subscribers", params={"email_address": "x@example.com"})
    assert (unknown.status_code, unknown.json()["subscribers"]) == (200, [])
    assert kit_api.get("/v4/subscribers", params={"email_address": "bad"}).status_code == 422


def test_it_paginates_with_cursors(kit: FakeKit, kit_api: httpx.Client) -> None:
    for i in range(5):
        kit.add_subscriber(f"s{i}@example.com")
    first = kit_api.get("/v4/subscribers", params={"per_page": 2,
                                                   "include_total_count": "true"}).json()
    assert [s["email_address"] for s in first["subscribers"]] == ["s0@example.com",
                                                                  "s1@example.com"]
    page = first["pagination"]
    assert (page["has_previous_page"], page["has_next_page"], page["per_page"],
            page["total_count"]) == (False, True, 2, 5)
    second = kit_api.get("/v4/subscribers", params={"per_page": 2,
                                                    "after": page["end_cursor"]}).json()
    assert [s["email_address"] for s in second["subscribers"]] == ["s2@example.com",
                                                                   "s3@example.com"]
    assert second["pagination"]["has_previous_page"] is True
    back = kit_api.get("/v4/subscribers", params={
        "per_page": 2, "before": second["pagination"]["start_cursor"]}).json()
    assert back["subscribers"] == first["subscribers"]
    assert kit_api.get("/v4/subscribers", params={"per_page": 5000}).json()[
        "pagination"]["per_page"] == 1000
    assert kit_api.get("/v4/subscribers").json()["pagination"]["per_page"] == 500


def test_it_shows_and_updates_a_subscriber(kit: FakeKit, kit_api: httpx.Client) -> None:
    sub = kit.add_subscriber("a@example.com", "Ann")
    kit.add_subscriber("b@example.com")
    assert kit_api.get(f"/v4/subscribers/{sub['id']}").json()["subscriber"]["first_name"] == "Ann"
    r = kit_api.put(f"/v4/subscribers/{sub['id']}", json={"email_address": "new@example.com"})
    assert r.status_code == 200 and kit.subscriber("new@example.com") is not None
    clash = kit_api.put(f"/v4/subscribers/{sub['id']}", json={"email_address": "b@example.com"})
    assert clash.status_code == 422
    assert kit_api.get("/v4/subscribers/999").status_code == 404


def test_it_unsubscribes_by_id_with_an_empty_body(kit: FakeKit, kit_api: httpx.Client) -> None:
    sub = kit.add_subscriber("a@example.com")
    r = kit_api.post(f"/v4/subscribers/{sub['id']}/unsubscribe", json={})
    assert (r.status_code, r.content) == (204, b"")
    assert kit.subscriber("a@example.com")["state"] == "cancelled"
    assert kit_api.post("/v4/subscribers/999/unsubscribe", json={}).status_code == 404


# ---- tags ----------------------------------------------------------------------------------

def test_it_tags_by_email_with_201_then_200(account: FakeKit, kit_api: httpx.Client) -> None:
    account.add_subscriber("a@example.com")
    first = kit_api.post("/v4/tags/1/subscribers", json={"email_address": "A@example.com"})
    again = kit_api.post("/v4/tags/1/subscribers", json={"email_address": "a@example.com"})
    assert (first.status_code, again.status_code) == (201, 200)
    assert "tagged_at" in first.json()["subscriber"]
    assert [c.changed for c in account.calls] == [True, False]
    assert account.subscriber("a@example.com")["tag_ids"] == {1}


def test_it_explains_tag_errors(account: FakeKit, kit_api: httpx.Client) -> None:
    assert kit_api.post("/v4/tags/99/subscribers",
                        json={"email_address": "a@example.com"}).status_code == 404
    r = kit_api.post("/v4/tags/1/subscribers", json={})
    assert (r.status_code, r.json()) == (422, {"errors": [
        "Either subscriber id or email address is required to tag subscriber"]})
    unknown = kit_api.post("/v4/tags/1/subscribers", json={"email_address": "x@example.com"})
    assert unknown.status_code == 404  # the subscriber must already exist (default 404)
    account.configure(unknown_subscriber_status=422)
    assert kit_api.post("/v4/tags/1/subscribers",
                        json={"email_address": "x@example.com"}).status_code == 422


def test_it_tags_and_untags_by_id(account: FakeKit, kit_api: httpx.Client) -> None:
    sub = account.add_subscriber("a@example.com")
    assert kit_api.post(f"/v4/tags/2/subscribers/{sub['id']}", json={}).status_code == 201
    assert kit_api.post(f"/v4/tags/2/subscribers/{sub['id']}", json={}).status_code == 200
    tags = kit_api.get(f"/v4/subscribers/{sub['id']}/tags").json()["tags"]
    assert [t["name"] for t in tags] == ["vip"] and "tagged_at" in tags[0]
    r = kit_api.delete(f"/v4/tags/2/subscribers/{sub['id']}")
    assert (r.status_code, account.calls[-1].changed) == (204, True)
    assert kit_api.delete(f"/v4/tags/2/subscribers/{sub['id']}").status_code == 404
    account.configure(untag_missing_status=204)
    assert kit_api.delete(f"/v4/tags/2/subscribers/{sub['id']}").status_code == 204
    assert account.calls[-1].changed is False


def test_it_untags_by_email(account: FakeKit, kit_api: httpx.Client) -> None:
    account.add_subscriber("a@example.com", tag_ids=[1])
    r = kit_api.request("DELETE", "/v4/tags/1/subscribers",
                        json={"email_address": "a@example.com"})
    assert r.status_code == 204
    assert account.subscriber("a@example.com")["tag_ids"] == set()


def test_it_lists_and_creates_tags(account: FakeKit, kit_api: httpx.Client) -> None:
    created = kit_api.post("/v4/tags", json={"name": "New"})
    assert created.status_code == 201 and created.json()["tag"]["name"] == "New"
    assert kit_api.post("/v4/tags", json={"name": "new"}).status_code == 200
    names = [t["name"] for t in kit_api.get("/v4/tags").json()["tags"]]
    assert names == ["paid", "vip", "New"]


# ---- sequences and custom fields -----------------------------------------------------------

def test_it_adds_to_a_sequence_with_201_then_200(account: FakeKit,
                                                 kit_api: httpx.Client) -> None:
    sub = account.add_subscriber("a@example.com")
    first = kit_api.post("/v4/sequences/3/subscribers", json={"email_address": "a@example.com"})
    again = kit_api.post(f"/v4/sequences/3/subscribers/{sub['id']}", json={})
    assert (first.status_code, again.status_code) == (201, 200)
    assert "added_at" in first.json()["subscriber"]
    assert account.subscriber("a@example.com")["sequence_ids"] == {3}
    assert kit_api.post("/v4/sequences/99/subscribers",
                        json={"email_address": "a@example.com"}).status_code == 404
    assert [s["name"] for s in kit_api.get("/v4/sequences").json()["sequences"]] == ["Welcome"]


def test_it_manages_custom_fields_by_key(account: FakeKit, kit_api: httpx.Client) -> None:
    created = kit_api.post("/v4/custom_fields", json={"label": "Shoe Size"})
    assert created.status_code == 201
    field = created.json()["custom_field"]
    assert (field["key"], field["label"]) == ("shoe_size", "Shoe Size")
    renamed = kit_api.put(f"/v4/custom_fields/{field['id']}", json={"label": "Shoe"})
    assert renamed.json()["custom_field"]["key"] == "shoe_size"
    keys = [f["key"] for f in kit_api.get("/v4/custom_fields").json()["custom_fields"]]
    assert keys == ["last_name", "shoe_size"]
    assert kit_api.delete(f"/v4/custom_fields/{field['id']}").status_code == 204


# ---- rate limit and control API ------------------------------------------------------------

def test_it_rate_limits_per_credential_with_plain_text() -> None:
    with FakeKit(rate_limit=(2, 0.4), oauth_tokens=("t",)) as fake:
        statuses = [httpx.get(fake.url + "/v4/tags", headers=KIT_AUTH).status_code
                    for _ in range(3)]
        assert statuses == [200, 200, 429]
        limited = httpx.get(fake.url + "/v4/tags", headers=KIT_AUTH)
        assert limited.text == "Retry later"
        assert limited.headers["content-type"].startswith("text/plain")
        assert "retry-after" not in limited.headers
        # Another credential has its own budget.
        assert httpx.get(fake.url + "/v4/tags",
                         headers={"Authorization": "Bearer t"}).status_code == 200
        time.sleep(0.45)
        assert httpx.get(fake.url + "/v4/tags", headers=KIT_AUTH).status_code == 200


def test_it_seeds_and_inspects_over_http(kit: FakeKit, kit_api: httpx.Client) -> None:
    r = httpx.post(kit.url + "/_fake/seed", json={
        "tags": [{"id": 1, "name": "paid"}], "sequences": [{"id": 3, "name": "Welcome"}],
        "custom_fields": [{"key": "last_name", "label": "Last Name"}],
        "subscribers": [{"email": "a@example.com", "first_name": "Ann",
                         "fields": {"last_name": "Lee"}, "tag_ids": [1]}],
    })
    assert r.status_code == 201
    seen = httpx.get(kit.url + "/_fake/subscriber", params={"email": "A@example.com"}).json()
    assert (seen["tag_ids"], seen["sequence_ids"], seen["fields"]) == (
        [1], [], {"last_name": "Lee"})
    state = httpx.get(kit.url + "/_fake/state").json()
    assert [t["name"] for t in state["tags"]] == ["paid"]
