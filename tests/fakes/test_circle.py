"""FakeCircle against shared/providers/circle.md, over real HTTP."""

from __future__ import annotations

import time

import httpx
import pytest

from frontdesk.fakes import FakeCircle

from .conftest import CIRCLE_AUTH

INVALID_TOKEN = {"success": False, "message": "The API token is invalid.", "error_details": {}}


def missing(record: str) -> dict:
    return {"success": False, "message": "Oops! Missing record. Please try again later.",
            "error_details": {"message": f"Missing record: {record}"}}


@pytest.fixture
def community(circle: FakeCircle) -> FakeCircle:
    circle.add_space(1, "General")
    circle.add_space(2, "Course")
    circle.add_space(3, "Lounge")
    circle.add_space_group(10, "Members", space_ids=[1, 2])
    circle.add_member_tag(5, "paid")
    circle.add_member_tag(6, "vip")
    circle.add_access_group(7, "Gold")
    return circle


# ---- auth, plan gate, errors ---------------------------------------------------------------

def test_it_rejects_a_missing_token_with_the_error_schema(circle: FakeCircle) -> None:
    r = httpx.get(circle.url + "/api/admin/v2/community_members")
    assert r.status_code == 401
    assert r.json() == INVALID_TOKEN
    assert circle.calls[-1].status == 401 and circle.calls[-1].auth_scheme is None


def test_it_rejects_a_wrong_token(circle: FakeCircle) -> None:
    r = httpx.get(circle.url + "/api/admin/v2/spaces", headers={"Authorization": "Token nope"})
    assert (r.status_code, r.json()) == (401, INVALID_TOKEN)


@pytest.mark.parametrize("scheme", ["Token", "Bearer"])
def test_it_accepts_token_and_bearer(circle: FakeCircle, scheme: str) -> None:
    r = httpx.get(circle.url + "/api/admin/v2/spaces",
                  headers={"Authorization": f"{scheme} circle-test-token"})
    assert r.status_code == 200
    assert circle.calls[-1].auth_scheme == scheme


def test_it_answers_the_plan_gate_on_every_route(circle_api: httpx.Client,
                                                 circle: FakeCircle) -> None:
    httpx.post(circle.url + "/_fake/config", json={"plan_gate": True})
    for r in (circle_api.get("/spaces"), circle_api.post("/community_members", json={})):
        assert r.status_code == 403
        assert r.json()["message"] == "The community is not eligible for admin API v2 access."


def test_it_returns_404_for_an_unknown_route(circle_api: httpx.Client) -> None:
    r = circle_api.get("/nothing_here")
    assert r.status_code == 404
    assert r.json()["success"] is False


def test_it_answers_400_for_malformed_json(circle_api: httpx.Client) -> None:
    r = circle_api.post("/community_members", content=b"{not json",
                        headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    assert r.json()["success"] is False


# ---- §5.1 community members ----------------------------------------------------------------

def test_it_creates_an_invited_member_with_memberships(community: FakeCircle,
                                                       circle_api: httpx.Client) -> None:
    r = circle_api.post("/community_members", json={
        "email": "Ann@Example.com", "name": "Ann Lee", "skip_invitation": True,
        "space_group_ids": [10], "space_ids": [3], "member_tag_ids": [5],
    })
    assert r.status_code == 201
    body = r.json()
    assert body["message"] == ("This user has been invited to the community and has been added "
                               "to following space groups: Members spaces: Lounge.")
    member = body["community_member"]
    assert member["email"] == "Ann@Example.com"
    assert (member["active"], member["accepted_invitation"]) == (False, "")
    assert member["member_tags"] == [{"name": "paid", "id": 5}]
    assert (member["first_name"], member["last_name"]) == ("Ann", "Lee")
    seen = community.member("ann@example.com")
    assert seen is not None
    assert seen["space_ids"] == {1, 2, 3}  # the group's spaces come with it
    assert seen["space_group_ids"] == {10} and seen["member_tag_ids"] == {5}
    assert community.calls[-1].changed is True


def test_it_rejects_an_invalid_or_blocked_email(circle_api: httpx.Client) -> None:
    for email in ("not-an-email", "someone@invalid.example"):
        r = circle_api.post("/community_members", json={"email": email})
        assert r.status_code == 422
        assert r.json()["message"] == "Invalid email address."


def test_it_rejects_a_weak_password(circle_api: httpx.Client) -> None:
    r = circle_api.post("/community_members", json={"email": "a@example.com",
                                                    "password": "short"})
    assert r.status_code == 422
    assert r.json()["message"].startswith("Validation failed: Password Please make sure")


def test_it_answers_member_limit_403_with_errors_key(circle: FakeCircle,
                                                     circle_api: httpx.Client) -> None:
    circle.configure(member_limit="daily")
    r = circle_api.post("/community_members", json={"email": "a@example.com"})
    assert (r.status_code, r.json()) == (403, {"success": False,
                                               "errors": "Daily member limit exceeded."})


def test_it_answers_422_for_a_duplicate_create_by_default(circle: FakeCircle,
                                                          circle_api: httpx.Client) -> None:
    circle.add_member("a@example.com", "A")
    r = circle_api.post("/community_members", json={"email": "A@EXAMPLE.com"})
    assert r.status_code == 422
    assert circle.calls[-1].changed is False


def test_it_can_answer_201_with_the_existing_member_for_a_duplicate(
        circle: FakeCircle, circle_api: httpx.Client) -> None:
    existing = circle.add_member("a@example.com", "A")
    circle.configure(duplicate_create="201")
    r = circle_api.post("/community_members", json={"email": "a@example.com"})
    assert r.status_code == 201
    assert r.json()["community_member"]["id"] == existing["id"]
    assert circle.calls[-1].changed is False
    assert len(circle.members) == 1


def test_it_finds_invited_members_by_email_case_insensitively(
        circle: FakeCircle, circle_api: httpx.Client) -> None:
    circle.add_member("Bob@Example.com", "Bob", active=False)
    r = circle_api.get("/community_members/search", params={"email": "bob@EXAMPLE.COM"})
    assert r.status_code == 200
    assert r.json()["email"] == "Bob@Example.com"
    assert r.json()["active"] is False
    assert "gamification_stats" in r.json()


def test_it_returns_404_with_record_name_for_unknown_member(circle_api: httpx.Client) -> None:
    r = circle_api.get("/community_members/search", params={"email": "nobody@example.com"})
    assert (r.status_code, r.json()) == (404, missing("community member"))
    assert circle_api.get("/community_members/999").status_code == 404


def test_it_lists_active_members_by_default_with_the_envelope(
        circle: FakeCircle, circle_api: httpx.Client) -> None:
    for i in range(12):
        circle.add_member(f"m{i}@example.com", active=i % 4 != 0)  # 3 invited, 9 active
    body = circle_api.get("/community_members").json()
    assert {k: body[k] for k in ("page", "per_page", "has_next_page", "count", "page_count")} == {
        "page": 1, "per_page": 10, "has_next_page": False, "count": 9, "page_count": 9}
    assert circle_api.get("/community_members", params={"status": "inactive"}).json()[
        "count"] == 3
    everyone = circle_api.get("/community_members", params={"status": "all", "per_page": 5,
                                                            "page": 3}).json()
    assert (everyone["count"], everyone["page_count"], everyone["has_next_page"]) == (12, 2, False)


def test_it_caps_per_page_at_100(circle: FakeCircle, circle_api: httpx.Client) -> None:
    assert circle_api.get("/community_members", params={"per_page": 500}).json()[
        "per_page"] == 100


def test_it_filters_members_by_any_of_the_tags(community: FakeCircle,
                                               circle_api: httpx.Client) -> None:
    community.add_member("a@example.com", member_tag_ids=[5])
    community.add_member("b@example.com", member_tag_ids=[6])
    community.add_member("c@example.com")
    r = circle_api.get("/community_members", params={"member_tag_ids": "5,6"})
    assert sorted(m["email"] for m in r.json()["records"]) == ["a@example.com", "b@example.com"]


def test_it_updates_a_member_and_rejects_a_blank_name(community: FakeCircle,
                                                      circle_api: httpx.Client) -> None:
    m = community.add_member("a@example.com", "A")
    r = circle_api.put(f"/community_members/{m['id']}", json={"name": "Anna", "space_ids": [3]})
    assert r.status_code == 200 and r.json()["name"] == "Anna"
    assert community.member("a@example.com")["space_ids"] == {3}
    r = circle_api.put(f"/community_members/{m['id']}", json={"name": ""})
    assert (r.status_code, r.json()["message"]) == (422, "Validation failed: Name can't be blank")


def test_it_deactivates_a_member(circle: FakeCircle, circle_api: httpx.Client) -> None:
    m = circle.add_member("a@example.com")
    r = circle_api.delete(f"/community_members/{m['id']}")
    assert r.json() == {"message": "The community member has been removed from the community."}
    assert circle.member("a@example.com") is None
    assert circle_api.delete(f"/community_members/{m['id']}").status_code == 404


# ---- §5.3 spaces ---------------------------------------------------------------------------

def test_it_adds_to_a_space_with_200_and_repeats_with_200(community: FakeCircle,
                                                          circle_api: httpx.Client) -> None:
    community.add_member("a@example.com")
    first = circle_api.post("/space_members", json={"email": "A@example.com", "space_id": 3})
    again = circle_api.post("/space_members", json={"email": "a@example.com", "space_id": 3})
    assert (first.status_code, first.json()) == (200, {"message": "User added to space"})
    assert again.status_code == 200
    assert [c.changed for c in community.calls] == [True, False]


def test_it_can_answer_422_for_a_repeated_space_add(community: FakeCircle,
                                                    circle_api: httpx.Client) -> None:
    community.add_member("a@example.com", space_ids=[3])
    community.configure(repeat_add="422")
    r = circle_api.post("/space_members", json={"email": "a@example.com", "space_id": 3})
    assert (r.status_code, r.json()) == (422, {"success": False,
                                               "message": "User not added to space.",
                                               "error_details": {}})


def test_it_names_the_missing_record_for_space_calls(community: FakeCircle,
                                                     circle_api: httpx.Client) -> None:
    community.add_member("a@example.com")
    assert circle_api.post("/space_members", json={"email": "a@example.com", "space_id": 99}
                           ).json() == missing("space")
    assert circle_api.post("/space_members", json={"email": "x@example.com", "space_id": 3}
                           ).json() == missing("user")
    r = circle_api.delete("/space_members", params={"email": "a@example.com", "space_id": 3})
    assert (r.status_code, r.json()) == (404, missing("space member"))


def test_it_removes_from_a_space(community: FakeCircle, circle_api: httpx.Client) -> None:
    community.add_member("a@example.com", space_ids=[3])
    r = circle_api.delete("/space_members", params={"email": "a@example.com", "space_id": 3})
    assert (r.status_code, r.json()) == (200, {"message": "Member removed from space"})
    assert community.member("a@example.com")["space_ids"] == set()
    assert community.calls[-1].changed is True


def test_it_lists_and_shows_space_members(community: FakeCircle,
                                          circle_api: httpx.Client) -> None:
    community.add_member("a@example.com", space_ids=[3])
    community.add_member("b@example.com", active=False, space_ids=[3])
    body = circle_api.get("/space_members", params={"space_id": 3}).json()
    assert (body["per_page"], body["count"]) == (60, 2)  # default status: all
    record = body["records"][0]
    assert record["space_id"] == 3 and record["community_member"]["email"] == "a@example.com"
    assert circle_api.get("/space_members", params={"space_id": 3, "status": "active"}).json()[
        "count"] == 1
    shown = circle_api.get("/space_member", params={"email": "B@example.com", "space_id": 3})
    assert shown.status_code == 200 and shown.json()["status"] == "inactive"


# ---- §5.4 space groups ---------------------------------------------------------------------

def test_it_adds_to_a_space_group_and_says_already_added(community: FakeCircle,
                                                         circle_api: httpx.Client) -> None:
    community.add_member("a@example.com")
    body = {"email": "a@example.com", "space_group_id": 10}
    first, again = (circle_api.post("/space_group_members", json=body) for _ in range(2))
    assert (first.status_code, first.json()) == (
        200, {"success": True, "message": "User has been added to the space group."})
    assert (again.status_code, again.json()) == (
        200, {"success": True, "message": "User is already added to the space group."})
    assert [c.changed for c in community.calls] == [True, False]
    assert community.member("a@example.com")["space_ids"] == {1, 2}


def test_it_refuses_space_group_add_for_a_non_member(community: FakeCircle,
                                                     circle_api: httpx.Client) -> None:
    r = circle_api.post("/space_group_members", json={"email": "x@example.com",
                                                      "space_group_id": 10})
    assert (r.status_code, r.json()["message"]) == (422, "User is not a member of community")


def test_it_puts_the_space_group_record_name_in_message(community: FakeCircle,
                                                        circle_api: httpx.Client) -> None:
    r = circle_api.post("/space_group_members", json={"email": "a@example.com",
                                                      "space_group_id": 99})
    assert (r.status_code, r.json()) == (404, {"success": False,
                                               "message": "Missing record: space group",
                                               "error_details": {}})


def test_it_removes_from_a_space_group_and_its_spaces(community: FakeCircle,
                                                      circle_api: httpx.Client) -> None:
    community.add_member("a@example.com", space_group_ids=[10], space_ids=[3])
    r = circle_api.delete("/space_group_members", params={"email": "a@example.com",
                                                          "space_group_id": 10})
    assert r.json() == {"success": True,
                        "message": "User removed from the space group and its spaces"}
    seen = community.member("a@example.com")
    assert (seen["space_group_ids"], seen["space_ids"]) == (set(), {3})
    listed = circle_api.get("/space_group_members", params={"space_group_id": 10}).json()
    assert listed["count"] == 0


# ---- §5.5 member tags ----------------------------------------------------------------------

def test_it_tags_with_201_and_repeats_with_201(community: FakeCircle,
                                               circle_api: httpx.Client) -> None:
    community.add_member("a@example.com")
    body = {"member_tag_id": 5, "user_email": "a@example.com"}
    first, again = (circle_api.post("/tagged_members", json=body) for _ in range(2))
    assert (first.status_code, first.json()) == (201, {"message": "Person tagged successfully!"})
    assert again.status_code == 201
    assert [c.changed for c in community.calls] == [True, False]


def test_it_untags_and_names_missing_records(community: FakeCircle,
                                             circle_api: httpx.Client) -> None:
    community.add_member("a@example.com", member_tag_ids=[5])
    params = {"user_email": "a@example.com", "member_tag_id": 5}
    r = circle_api.delete("/tagged_members", params=params)
    assert (r.status_code, r.json()) == (200, {"message": "Tag has been removed"})
    assert circle_api.delete("/tagged_members", params=params).json() == missing("tagged member")
    assert circle_api.post("/tagged_members", json={"member_tag_id": 99,
                                                    "user_email": "a@example.com"}
                           ).json() == missing("member tag")


def test_it_lists_tagged_members_with_the_documented_fields(community: FakeCircle,
                                                            circle_api: httpx.Client) -> None:
    m = community.add_member("a@example.com", member_tag_ids=[5, 6])
    body = circle_api.get("/tagged_members", params={"member_tag_ids": "5"}).json()
    assert body["count"] == 1
    record = body["records"][0]
    assert {"id", "member_tag_id", "member_tag_name", "member_tag_emoji", "user_id",
            "user_email", "lead_id", "lead_email", "community_member_id", "contact_id",
            "created_at", "updated_at"} <= set(record)
    assert (record["member_tag_name"], record["community_member_id"]) == ("paid", m["id"])
    assert circle_api.get(f"/tagged_members/{record['id']}").json()["user_email"] == (
        "a@example.com")


# ---- §5.6 access groups --------------------------------------------------------------------

def test_it_adds_to_an_access_group_with_201(community: FakeCircle,
                                             circle_api: httpx.Client) -> None:
    community.add_member("a@example.com")
    r = circle_api.post("/access_groups/7/community_members", json={"email": "a@example.com"})
    assert (r.status_code, r.json()) == (
        201, {"message": "Member has been added to 'Gold' access group."})
    again = circle_api.post("/access_groups/7/community_members", json={"email": "a@example.com"})
    assert again.status_code == 201 and community.calls[-1].changed is False
    assert community.member("a@example.com")["access_group_ids"] == {7}


def test_it_removes_from_an_access_group_then_says_not_a_member(
        community: FakeCircle, circle_api: httpx.Client) -> None:
    community.add_member("a@example.com", access_group_ids=[7])
    path, params = "/access_groups/7/community_members", {"email": "a@example.com"}
    r = circle_api.delete(path, params=params)
    assert (r.status_code, r.json()) == (
        200, {"message": "Member removed from 'Gold' access group."})
    r = circle_api.delete(path, params=params)
    assert (r.status_code, r.json()) == (404, missing("access group community member"))
    assert circle_api.delete("/access_groups/99/community_members", params=params).json() == (
        missing("access group"))


def test_it_lists_and_shows_access_group_members(community: FakeCircle,
                                                 circle_api: httpx.Client) -> None:
    m = community.add_member("a@example.com", access_group_ids=[7])
    body = circle_api.get("/access_groups/7/community_members").json()
    assert body["per_page"] == 60
    assert set(body["records"][0]) == {"id", "access_group_id", "community_member_id",
                                       "community_id", "created_at", "updated_at"}
    shown = circle_api.get("/access_groups/7/community_member", params={"email": "A@example.com"})
    assert shown.json()["community_member_id"] == m["id"]


def test_it_lists_targets_for_a_doctor_check(community: FakeCircle,
                                             circle_api: httpx.Client) -> None:
    names = {path: [r["name"] for r in circle_api.get(path).json()["records"]]
             for path in ("/spaces", "/space_groups", "/member_tags", "/access_groups")}
    assert names == {"/spaces": ["General", "Course", "Lounge"], "/space_groups": ["Members"],
                     "/member_tags": ["paid", "vip"], "/access_groups": ["Gold"]}


# ---- limits --------------------------------------------------------------------------------

def test_it_rate_limits_per_ip_without_headers_and_recovers() -> None:
    with FakeCircle(rate_limit=(3, 0.4)) as fake, httpx.Client(
            base_url=fake.url + "/api/admin/v2", headers=CIRCLE_AUTH) as api:
        statuses = [api.get("/spaces").status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        limited = api.get("/spaces")
        assert limited.json()["success"] is False and "retry-after" not in limited.headers
        assert fake.calls[-1].status == 429 and fake.calls[-1].fault == "rate_limit"
        time.sleep(0.45)
        assert api.get("/spaces").status_code == 200


def test_it_can_add_retry_after_to_rate_limit_answers() -> None:
    with FakeCircle(rate_limit=(1, 5.0), rate_limit_retry_after=7) as fake:
        httpx.get(fake.url + "/api/admin/v2/spaces", headers=CIRCLE_AUTH)
        r = httpx.get(fake.url + "/api/admin/v2/spaces", headers=CIRCLE_AUTH)
        assert (r.status_code, r.headers["retry-after"]) == (429, "7")


def test_it_enforces_a_monthly_quota_with_a_configurable_status(
        circle: FakeCircle, circle_api: httpx.Client) -> None:
    httpx.post(circle.url + "/_fake/config", json={"monthly_quota": 2, "quota_status": 403})
    assert [circle_api.get("/spaces").status_code for _ in range(3)] == [200, 200, 403]
    assert circle_api.get("/spaces").json()["message"] == (
        "Monthly Admin API request quota exceeded.")
    assert httpx.get(circle.url + "/_fake/state").json()["quota"]["used"] == 2


# ---- control API ---------------------------------------------------------------------------

def test_it_seeds_and_inspects_over_http(circle: FakeCircle, circle_api: httpx.Client) -> None:
    r = httpx.post(circle.url + "/_fake/seed", json={
        "spaces": [{"id": 1, "name": "General"}],
        "space_groups": [{"id": 10, "name": "Members", "space_ids": [1]}],
        "access_groups": [{"id": 7, "name": "Gold"}],
        "member_tags": [{"id": 5, "name": "paid"}],
        "members": [{"email": "a@example.com", "name": "A", "space_group_ids": [10],
                     "member_tag_ids": [5], "access_group_ids": [7]}],
    })
    assert r.status_code == 201
    seen = httpx.get(circle.url + "/_fake/member", params={"email": "A@example.com"}).json()
    assert (seen["space_ids"], seen["space_group_ids"], seen["member_tag_ids"],
            seen["access_group_ids"]) == ([1], [10], [5], [7])
    assert httpx.get(circle.url + "/_fake/member", params={"email": "x@y.zz"}).status_code == 404
    assert circle_api.get("/community_members/search",
                          params={"email": "a@example.com"}).status_code == 200
