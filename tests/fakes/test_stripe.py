"""FakeStripe against shared/providers/stripe.md §8, over real HTTP."""

from __future__ import annotations

import time

import httpx
import pytest

from frontdesk.fakes import FakeStripe, stripe_fixtures
from frontdesk.fakes.stripe import line_item, make_event, subscription_item

DAY = 24 * 3600


@pytest.fixture
def shop(stripe: FakeStripe) -> FakeStripe:
    stripe.add_customer({"id": "cus_1", "email": "buyer@example.com", "name": "Buyer"})
    stripe.add_customer({"id": "cus_gone", "deleted": True})
    stripe.add_checkout_session(
        {"id": "cs_1", "mode": "payment", "status": "complete", "payment_status": "paid",
         "customer": "cus_1", "customer_details": {"email": "buyer@example.com"}},
        [line_item(f"price_{i}", f"prod_{i}") for i in range(12)],
    )
    stripe.add_subscription({
        "id": "sub_1", "customer": "cus_1", "status": "active",
        "items": [subscription_item("price_m", "prod_m", 1_700_000_000, 1_702_592_000)],
    })
    return stripe


# ---- auth and errors -----------------------------------------------------------------------

def test_it_rejects_a_missing_key_with_the_error_body(stripe: FakeStripe) -> None:
    r = httpx.get(stripe.url + "/v1/customers/cus_1")
    assert r.status_code == 401
    error = r.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["message"].startswith("You did not provide an API key.")
    assert r.headers["request-id"].startswith("req_")


def test_it_rejects_an_unknown_key_and_masks_it(stripe: FakeStripe) -> None:
    r = httpx.get(stripe.url + "/v1/customers/cus_1",
                  headers={"Authorization": "Bearer sk_test_wrongwrongwrong"})
    assert r.status_code == 401
    # Only the prefix and the last four characters are shown, as Stripe does.
    assert r.json()["error"]["message"] == "Invalid API Key provided: sk_test_" + "*" * 11 + "rong"


def test_it_accepts_bearer_and_basic(shop: FakeStripe) -> None:
    bearer = httpx.get(shop.url + "/v1/customers/cus_1",
                       headers={"Authorization": "Bearer sk_test_frontdesk"})
    basic = httpx.get(shop.url + "/v1/customers/cus_1", auth=("sk_test_frontdesk", ""))
    assert (bearer.status_code, basic.status_code) == (200, 200)
    assert [c.auth_scheme for c in shop.calls] == ["Bearer", "Basic"]
    assert bearer.json()["livemode"] is False


def test_it_answers_resource_missing_for_unknown_ids(stripe_api: httpx.Client) -> None:
    r = stripe_api.get("/v1/customers/cus_nope")
    assert r.status_code == 404
    error = r.json()["error"]
    assert {k: error[k] for k in ("type", "code", "message", "param", "doc_url")} == {
        "type": "invalid_request_error", "code": "resource_missing",
        "message": "No such customer: 'cus_nope'", "param": "id",
        "doc_url": "https://stripe.com/docs/error-codes/resource-missing"}
    assert error["request_log_url"].endswith(r.headers["request-id"])
    assert stripe_api.get("/v1/checkout/sessions/cs_x").json()["error"]["message"] == (
        "No such checkout.session: 'cs_x'")


def test_it_answers_unrecognized_urls(stripe_api: httpx.Client) -> None:
    r = stripe_api.get("/v1/charges_nope")
    assert r.status_code == 404
    assert r.json()["error"]["message"].startswith("Unrecognized request URL (GET: /v1/charges_")


def test_it_echoes_the_stripe_version_and_ignores_sdk_headers(shop: FakeStripe,
                                                              stripe_api: httpx.Client) -> None:
    r = stripe_api.get("/v1/customers/cus_1", headers={
        "Stripe-Version": "2026-10-28.endive", "X-Stripe-Client-User-Agent": "{}",
        "Idempotency-Key": "k1"})
    assert r.status_code == 200 and r.headers["stripe-version"] == "2026-10-28.endive"
    assert shop.calls[-1].headers["idempotency-key"] == "k1"


# ---- checkout sessions ---------------------------------------------------------------------

def test_it_lists_line_items_with_pagination(shop: FakeStripe, stripe_api: httpx.Client) -> None:
    first = stripe_api.get("/v1/checkout/sessions/cs_1/line_items").json()
    assert (first["object"], first["url"], first["has_more"], len(first["data"])) == (
        "list", "/v1/checkout/sessions/cs_1/line_items", True, 10)
    item = first["data"][0]
    assert (item["object"], item["price"]["id"], item["price"]["product"], item["quantity"]) == (
        "item", "price_0", "prod_0", 1)
    rest = stripe_api.get("/v1/checkout/sessions/cs_1/line_items",
                          params={"starting_after": first["data"][-1]["id"]}).json()
    assert [i["price"]["id"] for i in rest["data"]] == ["price_10", "price_11"]
    assert rest["has_more"] is False
    before = stripe_api.get("/v1/checkout/sessions/cs_1/line_items", params={
        "ending_before": rest["data"][0]["id"], "limit": 2}).json()
    assert [i["price"]["id"] for i in before["data"]] == ["price_8", "price_9"]
    assert before["has_more"] is True


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 101},
                                    {"starting_after": "a", "ending_before": "b"}])
def test_it_rejects_bad_list_parameters(shop: FakeStripe, stripe_api: httpx.Client,
                                        params: dict) -> None:
    r = stripe_api.get("/v1/checkout/sessions/cs_1/line_items", params=params)
    assert r.status_code == 400
    assert r.json()["error"]["type"] == "invalid_request_error"


def test_it_omits_line_items_unless_expanded(shop: FakeStripe, stripe_api: httpx.Client) -> None:
    plain = stripe_api.get("/v1/checkout/sessions/cs_1").json()
    assert "line_items" not in plain
    assert plain["customer"] == "cus_1"
    assert plain["customer_details"]["email"] == "buyer@example.com"
    for query in ("expand[]=line_items&expand[]=customer",
                  "expand[0]=line_items&expand[1]=customer"):
        expanded = stripe_api.get(f"/v1/checkout/sessions/cs_1?{query}").json()
        assert expanded["line_items"]["object"] == "list"
        assert expanded["line_items"]["data"][0]["price"]["id"] == "price_0"
        assert expanded["customer"]["email"] == "buyer@example.com"


def test_it_rejects_an_unknown_expansion(shop: FakeStripe, stripe_api: httpx.Client) -> None:
    r = stripe_api.get("/v1/checkout/sessions/cs_1", params={"expand[]": "nonsense"})
    assert r.status_code == 400
    assert r.json()["error"]["param"] == "expand"


# ---- subscriptions and customers -----------------------------------------------------------

def test_it_returns_a_basil_subscription(shop: FakeStripe, stripe_api: httpx.Client) -> None:
    sub = stripe_api.get("/v1/subscriptions/sub_1").json()
    assert (sub["object"], sub["status"], sub["customer"]) == ("subscription", "active", "cus_1")
    assert (sub["cancel_at_period_end"], sub["cancel_at"], sub["ended_at"]) == (False, None, None)
    assert "current_period_end" not in sub  # Basil moved it to the items (stripe.md §6)
    item = sub["items"]["data"][0]
    assert (item["price"]["id"], item["price"]["product"], item["current_period_end"]) == (
        "price_m", "prod_m", 1_702_592_000)
    assert item["subscription"] == "sub_1"
    expanded = stripe_api.get("/v1/subscriptions/sub_1", params={"expand[0]": "customer"})
    assert expanded.json()["customer"]["id"] == "cus_1"


def test_it_returns_a_deleted_customer_with_200(shop: FakeStripe,
                                                stripe_api: httpx.Client) -> None:
    r = stripe_api.get("/v1/customers/cus_gone")
    assert (r.status_code, r.json()) == (200, {"deleted": True, "id": "cus_gone",
                                               "object": "customer"})


# ---- events --------------------------------------------------------------------------------

@pytest.fixture
def events(stripe: FakeStripe) -> FakeStripe:
    now = int(time.time())
    stripe.add_event(make_event("checkout.session.completed", {"id": "cs_1"}, id="evt_1",
                                created=now - 300))
    stripe.add_event(make_event("invoice.paid", {"id": "in_1"}, id="evt_2", created=now - 200),
                     delivery_success=False)
    stripe.add_event(make_event("invoice.payment_failed", {"id": "in_2"}, id="evt_3",
                                created=now - 100))
    stripe.add_event(make_event("invoice.paid", {"id": "in_0"}, id="evt_old",
                                created=now - 31 * DAY))
    return stripe


def ids(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [e["id"] for e in response.json()["data"]]


def test_it_lists_events_newest_first_within_30_days(events: FakeStripe,
                                                     stripe_api: httpx.Client) -> None:
    r = stripe_api.get("/v1/events")
    assert ids(r) == ["evt_3", "evt_2", "evt_1"]
    assert r.json()["url"] == "/v1/events"
    assert stripe_api.get("/v1/events/evt_old").status_code == 404
    assert stripe_api.get("/v1/events/evt_2").json()["type"] == "invoice.paid"


def test_it_filters_events(events: FakeStripe, stripe_api: httpx.Client) -> None:
    assert ids(stripe_api.get("/v1/events", params={"type": "invoice.*"})) == ["evt_3", "evt_2"]
    assert ids(stripe_api.get("/v1/events?types[0]=invoice.paid&types[1]="
                              "checkout.session.completed")) == ["evt_2", "evt_1"]
    assert ids(stripe_api.get("/v1/events", params={"delivery_success": "false"})) == ["evt_2"]
    since = events.events["evt_2"]["created"]
    assert ids(stripe_api.get("/v1/events", params={"created[gte]": since})) == ["evt_3", "evt_2"]
    assert ids(stripe_api.get("/v1/events", params={"limit": 1, "starting_after": "evt_3"})
               ) == ["evt_2"]
    assert ids(stripe_api.get("/v1/events", params={"ending_before": "evt_1"})) == [
        "evt_3", "evt_2"]


def test_it_keeps_the_event_payload_as_given(stripe: FakeStripe,
                                             stripe_api: httpx.Client) -> None:
    # The fixture envelope's own object (a plan) must not leak into a test's payload.
    stripe.add_event({"id": "evt_x", "type": "customer.updated",
                      "data": {"object": {"id": "cus_1", "object": "customer"},
                               "previous_attributes": {"email": "old@example.com"}}})
    event = stripe_api.get("/v1/events/evt_x").json()
    assert event["data"] == {"object": {"id": "cus_1", "object": "customer"},
                             "previous_attributes": {"email": "old@example.com"}}
    assert (event["object"], event["livemode"]) == ("event", False)


def test_it_rejects_type_with_types_and_too_many_types(events: FakeStripe,
                                                       stripe_api: httpx.Client) -> None:
    both = stripe_api.get("/v1/events?type=invoice.paid&types[]=invoice.paid")
    assert both.status_code == 400
    many = "&".join(f"types[]=t{i}" for i in range(21))
    assert stripe_api.get(f"/v1/events?{many}").status_code == 400


# ---- seeding, faults, fixtures -------------------------------------------------------------

def test_it_seeds_over_http_with_shorthand_items(stripe: FakeStripe,
                                                 stripe_api: httpx.Client) -> None:
    r = httpx.post(stripe.url + "/_fake/seed", json={
        "checkout_sessions": [{"session": {"id": "cs_9", "mode": "subscription",
                                           "subscription": "sub_9"},
                               "line_items": [{"price_id": "price_a", "product_id": "prod_a",
                                               "quantity": 2}]}],
        "subscriptions": [{"id": "sub_9", "customer": "cus_9", "status": "past_due",
                           "items": [{"price_id": "price_a", "product_id": "prod_a",
                                      "current_period_start": 1, "current_period_end": 2}]}],
        "customers": [{"id": "cus_9", "email": "nine@example.com"}],
        "events": [{"event": {"id": "evt_9", "type": "invoice.paid"},
                    "delivery_success": False}],
    })
    assert r.status_code == 201
    items = stripe_api.get("/v1/checkout/sessions/cs_9/line_items").json()["data"]
    assert (items[0]["price"]["id"], items[0]["quantity"]) == ("price_a", 2)
    session = stripe_api.get("/v1/checkout/sessions/cs_9?expand[]=subscription").json()
    assert session["subscription"]["status"] == "past_due"
    assert ids(stripe_api.get("/v1/events", params={"delivery_success": "false"})) == ["evt_9"]


def test_it_can_fail_with_stripe_should_retry(shop: FakeStripe,
                                              stripe_api: httpx.Client) -> None:
    httpx.post(shop.url + "/_fake/faults", json={
        "status": 503, "count": 1, "headers": {"Stripe-Should-Retry": "true"}})
    r = stripe_api.get("/v1/customers/cus_1")
    assert (r.status_code, r.headers["stripe-should-retry"]) == (503, "true")
    assert r.json()["error"]["type"] == "api_error"
    assert stripe_api.get("/v1/customers/cus_1").status_code == 200


def test_it_builds_line_items_from_the_fixture() -> None:
    item = line_item("price_x", "prod_x", 3)
    assert (item["object"], item["price"]["id"], item["price"]["product"], item["quantity"]) == (
        "item", "price_x", "prod_x", 3)
    assert item["id"] != line_item("price_x", "prod_x")["id"]
    assert item["description"] == "T-shirt"  # from checkout_session_line_item.json


def test_it_falls_back_to_built_in_shapes_without_fixtures(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("FRONTDESK_STRIPE_FIXTURES", str(tmp_path))
    stripe_fixtures._load.cache_clear()
    try:
        with FakeStripe() as fake:
            fake.add_checkout_session({"id": "cs_min"}, [line_item("price_1", "prod_1")])
            r = httpx.get(fake.url + "/v1/checkout/sessions/cs_min/line_items",
                          auth=("sk_test_frontdesk", ""))
            assert r.json()["data"][0]["price"]["id"] == "price_1"
    finally:
        stripe_fixtures._load.cache_clear()
