"""A fake of the few Stripe API reads frontdesk makes, built from shared/providers/stripe.md §8.

Objects are the real fixture shapes (stripe_fixtures.py) with test-set values. Not faked: the
webhook sender (stripe.md §8.4 last item), writes, and every other resource.
"""

from __future__ import annotations

import re
import secrets
import time
from typing import Any

from .base import FakeServer, Request, Response, RouteSpec, json_response
from .stripe_fixtures import template

DEFAULT_API_VERSION = "2026-10-28.endive"  # stripe.md header: what stripe-python 16.1.0 pins
EVENT_RETENTION = 30 * 24 * 3600  # stripe.md §2: events from the last 30 days only
MAX_TYPES = 20  # stripe.md §8.2: `types[]` takes up to 20 names

NO_KEY = (
    "You did not provide an API key. You need to provide your API key in the Authorization "
    "header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See "
    "https://stripe.com/docs/api#authentication for details, or we can help at "
    "https://support.stripe.com/."
)


def _token(n: int = 24) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    return "".join(secrets.choice(alphabet) for _ in range(n))


def stripe_error(
    status: int,
    message: str,
    type: str = "invalid_request_error",
    code: str | None = None,
    param: str | None = None,
) -> Response:
    """stripe.md §8.3: `{"error": {type, code, message, param, doc_url, request_log_url}}`."""
    error: dict[str, Any] = {"type": type, "message": message}
    if code:
        error["code"] = code
        error["doc_url"] = f"https://stripe.com/docs/error-codes/{code.replace('_', '-')}"
    if param:
        error["param"] = param
    return json_response(status, {"error": error})


def line_item(price_id: str, product_id: str, quantity: int = 1, *,
              unit_amount: int | None = None, recurring: dict[str, Any] | None = None,
              description: str | None = None) -> dict[str, Any]:
    """A Checkout line item (fixture `checkout_session_line_item.json`) with these values set."""
    item = template("checkout_session_line_item")
    item["id"] = f"li_{_token()}"
    item["quantity"] = quantity
    item["price"]["id"] = price_id
    item["price"]["product"] = product_id
    if unit_amount is not None:
        item["price"]["unit_amount"] = unit_amount
        item["price"]["unit_amount_decimal"] = str(unit_amount)
        for key in ("amount_subtotal", "amount_total"):
            item[key] = unit_amount * quantity
    if recurring is not None:
        item["price"]["type"] = "recurring"
        item["price"]["recurring"] = {"interval": "month", "interval_count": 1, "meter": None,
                                      "trial_period_days": None, "usage_type": "licensed",
                                      **recurring}
    if description is not None:
        item["description"] = description
    return item


def subscription_item(price_id: str, product_id: str, current_period_start: int,
                      current_period_end: int, quantity: int = 1) -> dict[str, Any]:
    """A subscription item (fixture `subscription_item.json`); Basil+ keeps periods here (§6)."""
    item = template("subscription_item")
    item.update(id=f"si_{_token(14)}", quantity=quantity,
                current_period_start=current_period_start, current_period_end=current_period_end)
    item["price"]["id"] = price_id
    item["price"]["product"] = product_id
    return item


def make_event(type: str, obj: dict[str, Any], *, id: str | None = None,
               created: int | None = None,
               previous_attributes: dict[str, Any] | None = None) -> dict[str, Any]:
    """Wrap an object in the fixture event envelope (`event.json`), as stripe.md §11 asks."""
    event = template("event")
    event.update(id=id or f"evt_{_token()}", type=type,
                 created=int(created if created is not None else time.time()))
    event["data"] = {"object": obj}
    if previous_attributes is not None:
        event["data"]["previous_attributes"] = previous_attributes
    return event


def decode_params(query: dict[str, list[str]]) -> dict[str, Any]:
    """Stripe's bracket encoding → nested values (stripe.md §8.1).

    `expand[]=a` and `expand[0]=a` both give `{"expand": ["a"]}`; `created[gte]=1` gives
    `{"created": {"gte": "1"}}`. stripe-python sends indexed arrays, curl examples use `[]`.
    """
    out: dict[str, Any] = {}
    order = 0
    for key, values in query.items():
        parts = [key.split("[", 1)[0], *re.findall(r"\[([^\]]*)\]", key)]
        for value in values:
            node = out
            *heads, last = parts
            if len(parts) > 1 and (last == "" or last.isdigit()):
                for head in heads[:-1]:
                    node = node.setdefault(head, {})
                order += 1
                index = int(last) if last.isdigit() else 1_000_000 + order
                node.setdefault(heads[-1], []).append((index, value))
            else:
                for head in heads:
                    node = node.setdefault(head, {})
                node[last] = value
    return _sort_lists(out)


def _sort_lists(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _sort_lists(v) for k, v in node.items()}
    if isinstance(node, list):
        return [value for _, value in sorted(node, key=lambda pair: pair[0])]
    return node


def _deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict) and value:
            _deep_merge(base[key], value)
        else:
            base[key] = value
    return base


def _set_livemode(node: Any, livemode: bool) -> None:
    if isinstance(node, dict):
        if "livemode" in node:
            node["livemode"] = livemode
        for value in node.values():
            _set_livemode(value, livemode)
    elif isinstance(node, list):
        for value in node:
            _set_livemode(value, livemode)


class BadParam(Exception):
    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


class FakeStripe(FakeServer):
    name = "stripe"
    CONFIG_KEYS = ("rate_limit",)

    line_item = staticmethod(line_item)
    subscription_item = staticmethod(subscription_item)
    make_event = staticmethod(make_event)

    def __init__(
        self,
        port: int = 0,
        api_key: str = "sk_test_frontdesk",
        *,
        rate_limit: tuple[int, float] | None = (25, 1.0),
        seed: dict[str, Any] | None = None,
    ) -> None:
        # stripe.md §8.3: sandbox limit 25 requests/s ("treat the limits as maximums").
        self.api_key = api_key
        self.livemode = api_key.startswith(("sk_live_", "rk_live_"))
        super().__init__(port, rate_limit=rate_limit, seed=seed)

    # ---- state -----------------------------------------------------------------------------

    def reset_state(self) -> None:
        self.checkout_sessions: dict[str, dict[str, Any]] = {}
        self.session_line_items: dict[str, list[dict[str, Any]]] = {}
        self.subscriptions: dict[str, dict[str, Any]] = {}
        self.customers: dict[str, dict[str, Any]] = {}
        self.events: dict[str, dict[str, Any]] = {}
        self.event_delivered: dict[str, bool] = {}
        self._event_seq: dict[str, int] = {}

    def add_checkout_session(self, session: dict[str, Any],
                             line_items: list[dict[str, Any]]) -> dict[str, Any]:
        obj = _deep_merge(template("checkout_session"), session)
        if "id" not in session:
            obj["id"] = f"cs_test_{_token(58)}"
        obj.pop("line_items", None)  # only via the sub-resource or expand (§8.4)
        items = [self._line_item_from(i) for i in line_items]
        _set_livemode(obj, self.livemode)
        _set_livemode(items, self.livemode)
        with self._lock:
            self.checkout_sessions[obj["id"]] = obj
            self.session_line_items[obj["id"]] = items
        return obj

    def add_subscription(self, sub: dict[str, Any]) -> dict[str, Any]:
        sub = dict(sub)
        items = sub.pop("items", None)
        obj = _deep_merge(template("subscription"), sub)
        if "id" not in sub:
            obj["id"] = f"sub_{_token()}"
        if isinstance(items, dict):
            items = items.get("data", [])
        data = [self._subscription_item_from(i) for i in (items or [])]
        for item in data:
            item["subscription"] = obj["id"]
        obj["items"] = {"object": "list", "data": data, "has_more": False,
                        "total_count": len(data),
                        "url": f"/v1/subscription_items?subscription={obj['id']}"}
        _set_livemode(obj, self.livemode)
        with self._lock:
            self.subscriptions[obj["id"]] = obj
        return obj

    def add_customer(self, cust: dict[str, Any]) -> dict[str, Any]:
        if cust.get("deleted"):
            # stripe.md §8.2: a deleted customer is returned as {id, object, deleted: true}.
            obj = template("deleted_customer")
            obj["id"] = cust.get("id") or f"cus_{_token(14)}"
        else:
            obj = _deep_merge(template("customer"), cust)
            if "id" not in cust:
                obj["id"] = f"cus_{_token(14)}"
            _set_livemode(obj, self.livemode)
        with self._lock:
            self.customers[obj["id"]] = obj
        return obj

    def add_event(self, event: dict[str, Any], delivery_success: bool = True) -> dict[str, Any]:
        event = dict(event)
        data = event.pop("data", None)
        obj = _deep_merge(template("event"), event)
        if data is not None:
            obj["data"] = data  # the payload replaces the fixture's object; never mix the two
        if "id" not in event:
            obj["id"] = f"evt_{_token()}"
        if "created" not in event:
            obj["created"] = int(time.time())  # the fixture's 2009 date would be filtered out
        if not delivery_success and not obj.get("pending_webhooks"):
            obj["pending_webhooks"] = 1
        obj["livemode"] = self.livemode
        with self._lock:
            self.events[obj["id"]] = obj
            self.event_delivered[obj["id"]] = delivery_success
            self._event_seq[obj["id"]] = len(self._event_seq)
        return obj

    def seed(self, data: dict[str, Any]) -> dict[str, Any]:
        created: dict[str, list[Any]] = {
            "checkout_sessions": [], "subscriptions": [], "customers": [], "events": [],
        }
        for entry in data.get("checkout_sessions", []):
            created["checkout_sessions"].append(
                self.add_checkout_session(entry.get("session", {}), entry.get("line_items", [])))
        for sub in data.get("subscriptions", []):
            created["subscriptions"].append(self.add_subscription(sub))
        for cust in data.get("customers", []):
            created["customers"].append(self.add_customer(cust))
        for entry in data.get("events", []):
            if "event" in entry and "object" not in entry:  # {"event": {...}, "delivery_success"}
                created["events"].append(
                    self.add_event(entry["event"], entry.get("delivery_success", True)))
            else:
                created["events"].append(self.add_event(entry))
        return created

    def state(self) -> dict[str, Any]:
        return {
            "checkout_sessions": [
                {"session": s, "line_items": self.session_line_items.get(sid, [])}
                for sid, s in self.checkout_sessions.items()
            ],
            "subscriptions": list(self.subscriptions.values()),
            "customers": list(self.customers.values()),
            "events": [{"event": e, "delivery_success": self.event_delivered[eid]}
                       for eid, e in self.events.items()],
            "config": self.config(),
        }

    @staticmethod
    def _line_item_from(entry: dict[str, Any]) -> dict[str, Any]:
        """A full line item, or the shorthand {price_id, product_id, quantity} of the seed API."""
        if "price_id" in entry and "object" not in entry:
            extra = {k: entry[k] for k in ("unit_amount", "recurring", "description")
                     if k in entry}
            return line_item(entry["price_id"], entry["product_id"],
                             entry.get("quantity", 1), **extra)
        return entry

    @staticmethod
    def _subscription_item_from(entry: dict[str, Any]) -> dict[str, Any]:
        if "price_id" in entry and "object" not in entry:
            return subscription_item(entry["price_id"], entry["product_id"],
                                     entry["current_period_start"], entry["current_period_end"],
                                     entry.get("quantity", 1))
        return entry

    # ---- provider hooks --------------------------------------------------------------------

    def error_response(self, status: int, message: str | None = None) -> Response:
        # stripe.md §8.3: types api_error, card_error, idempotency_error, invalid_request_error.
        if status == 429:
            return stripe_error(429, message or "Request rate limit exceeded. Learn more about "
                                "rate limits here https://stripe.com/docs/rate-limits.",
                                code="rate_limit")
        if status == 402:
            return stripe_error(402, message or "Your card was declined.", type="card_error",
                                code="card_declined")
        if status == 409:
            return stripe_error(409, message or "Keys for idempotent requests can only be used "
                                "with the same parameters they were first used with.",
                                type="idempotency_error")
        if status >= 500 or status == 424:
            return stripe_error(status, message or "An unknown error occurred",
                                type="api_error")
        defaults = {401: NO_KEY, 403: "The provided key does not have the required permissions "
                    "for this endpoint.", 404: "Not found"}
        return stripe_error(status, message or defaults.get(status, "Invalid request"))

    def not_found_response(self, req: Request) -> Response:
        return stripe_error(404, f"Unrecognized request URL ({req.method}: {req.path}). Please "
                            "see https://stripe.com/docs or we can help at "
                            "https://support.stripe.com/.")

    def authenticate(self, req: Request) -> Response | None:
        # stripe.md §8.1: Bearer, or Basic with the key as username.
        if req.auth_scheme not in ("Bearer", "Basic") or not req.credential:
            resp = stripe_error(401, NO_KEY)
        elif req.credential != self.api_key:
            masked = req.credential[:8] + "*" * max(len(req.credential) - 12, 0) \
                + req.credential[-4:]
            resp = stripe_error(401, f"Invalid API Key provided: {masked}")
        else:
            return None
        resp.headers["WWW-Authenticate"] = 'Basic realm="Stripe"'
        return resp

    def rate_limit_key(self, req: Request) -> str:
        return f"key:{req.credential}" if req.credential else f"ip:{req.client_ip}"

    def decorate(self, req: Request, resp: Response) -> None:
        request_id = f"req_{_token(14)}"
        resp.headers.setdefault("Request-Id", request_id)
        resp.headers.setdefault("Stripe-Version",
                                req.headers.get("stripe-version", DEFAULT_API_VERSION))
        if isinstance(resp.body, dict) and isinstance(resp.body.get("error"), dict):
            mode = "" if self.livemode else "test/"
            resp.body["error"].setdefault(
                "request_log_url", f"https://dashboard.stripe.com/{mode}logs/{request_id}")

    def routes(self) -> list[RouteSpec]:
        obj_id = r"(?P<id>[^/]+)"
        return [
            ("GET", rf"/v1/checkout/sessions/{obj_id}/line_items$", self.list_line_items),
            ("GET", rf"/v1/checkout/sessions/{obj_id}$", self.retrieve_session),
            ("GET", rf"/v1/subscriptions/{obj_id}$", self.retrieve_subscription),
            ("GET", rf"/v1/customers/{obj_id}$", self.retrieve_customer),
            ("GET", r"/v1/customers$", self.list_customers),
            ("GET", r"/v1/subscriptions$", self.list_subscriptions),
            ("GET", r"/v1/events$", self.list_events),
            ("GET", rf"/v1/events/{obj_id}$", self.retrieve_event),
        ]

    # ---- helpers ---------------------------------------------------------------------------

    def _handle_bad_params(self, handler: Any, req: Request) -> Response:
        try:
            return handler(decode_params(req.query))
        except BadParam as exc:
            return stripe_error(400, str(exc), param=exc.param)

    @staticmethod
    def _missing(kind: str, object_id: str) -> Response:
        # stripe.md §8.4: 404 invalid_request_error / resource_missing / "No such …", param id.
        return stripe_error(404, f"No such {kind}: '{object_id}'", code="resource_missing",
                            param="id")

    def _list(self, params: dict[str, Any], items: list[dict[str, Any]], url: str,
              kind: str) -> Response:
        """stripe.md §8.2 pagination: `limit` 1–100 (default 10), exclusive cursors."""
        limit = _int_param(params, "limit", 10)
        if limit < 1:
            raise BadParam("This value must be greater than or equal to 1.", "limit")
        if limit > 100:
            raise BadParam("This value must be less than or equal to 100.", "limit")
        after, before = params.get("starting_after"), params.get("ending_before")
        if after and before:
            raise BadParam("You may only specify one of these parameters: ending_before, "
                           "starting_after.")
        ids = [i["id"] for i in items]
        cursor = after or before
        if cursor and cursor not in ids:
            raise BadParam(f"No such {kind}: '{cursor}'",
                           "starting_after" if after else "ending_before")
        if after:
            start = ids.index(after) + 1
            page, has_more = items[start:start + limit], start + limit < len(items)
        elif before:
            # Inferred (stripe.md §8.2): the `limit` objects nearest to X, still newest first.
            earlier = items[:ids.index(before)]
            page, has_more = earlier[-limit:], len(earlier) > limit
        else:
            page, has_more = items[:limit], len(items) > limit
        return json_response(200, {"object": "list", "data": page, "has_more": has_more,
                                   "url": url})

    def _expand(self, obj: dict[str, Any], params: dict[str, Any],
                expanders: dict[str, Any]) -> dict[str, Any]:
        """Apply `expand[]`; known links become objects when the fake holds them."""
        paths = params.get("expand") or []
        if isinstance(paths, str):
            paths = [paths]
        obj = dict(obj)
        for path in paths:
            head = path.split(".", 1)[0]
            if head not in obj and head not in expanders:
                raise BadParam(f"This property cannot be expanded ({path}).", "expand")
            if head in expanders and "." not in path:
                expanded = expanders[head](obj)
                if expanded is not None:
                    obj[head] = expanded
        return obj

    def _customer_of(self, obj: dict[str, Any]) -> dict[str, Any] | None:
        customer = obj.get("customer")
        return self.customers.get(customer) if isinstance(customer, str) else None

    def _subscription_of(self, obj: dict[str, Any]) -> dict[str, Any] | None:
        sub = obj.get("subscription")
        return self.subscriptions.get(sub) if isinstance(sub, str) else None

    # ---- §8.2 endpoints --------------------------------------------------------------------

    def retrieve_session(self, req: Request) -> Response:
        session = self.checkout_sessions.get(req.args["id"])
        if session is None:
            return self._missing("checkout.session", req.args["id"])

        def first_line_items(obj: dict[str, Any]) -> dict[str, Any]:
            # §8.2: expanded `line_items` holds "the first handful" of items (10 here).
            items = self.session_line_items.get(obj["id"], [])
            return {"object": "list", "data": items[:10], "has_more": len(items) > 10,
                    "url": f"/v1/checkout/sessions/{obj['id']}/line_items"}

        expanders = {"line_items": first_line_items, "customer": self._customer_of,
                     "subscription": self._subscription_of}
        return self._handle_bad_params(
            lambda p: json_response(200, self._expand(session, p, expanders)), req)

    def list_line_items(self, req: Request) -> Response:
        session_id = req.args["id"]
        if session_id not in self.checkout_sessions:
            return self._missing("checkout.session", session_id)
        items = self.session_line_items.get(session_id, [])

        def handle(params: dict[str, Any]) -> Response:
            for path in params.get("expand") or []:
                if not path.startswith("data."):  # list expansions are relative to data
                    raise BadParam(f"This property cannot be expanded ({path}).", "expand")
            return self._list(params, items, f"/v1/checkout/sessions/{session_id}/line_items",
                              "item")

        return self._handle_bad_params(handle, req)

    def retrieve_subscription(self, req: Request) -> Response:
        sub = self.subscriptions.get(req.args["id"])
        if sub is None:
            return self._missing("subscription", req.args["id"])
        return self._handle_bad_params(
            lambda p: json_response(200, self._expand(sub, p, {"customer": self._customer_of})),
            req)

    def retrieve_customer(self, req: Request) -> Response:
        customer = self.customers.get(req.args["id"])
        if customer is None:
            return self._missing("customer", req.args["id"])
        # §8.2: a deleted customer answers 200 with {id, object, deleted: true} (inferred 200).
        return self._handle_bad_params(lambda p: json_response(200, customer), req)

    def _live_events(self) -> list[dict[str, Any]]:
        """Events of the last 30 days, newest first (ties: the later-added one first)."""
        cutoff = time.time() - EVENT_RETENTION
        live = [e for e in self.events.values() if e["created"] >= cutoff]
        return sorted(live, key=lambda e: (e["created"], self._event_seq[e["id"]]), reverse=True)

    def list_customers(self, req: Request) -> Response:
        """docs.stripe.com/api/customers/list: newest first; `email`, `created` filters."""
        def listing(params: dict[str, Any]) -> Response:
            items = sorted(self.customers.values(), key=lambda c: (c.get("created") or 0, c["id"]), reverse=True)
            if params.get("email"):
                items = [c for c in items if c.get("email") == params["email"]]
            if params.get("created") is not None:
                items = [c for c in items if _created_matches(c.get("created") or 0, params["created"])]
            return self._list(params, [c for c in items if not c.get("deleted")], "/v1/customers", "customer")
        return self._handle_bad_params(listing, req)

    def list_subscriptions(self, req: Request) -> Response:
        """docs.stripe.com/api/subscriptions/list: without `status`, canceled subscriptions are
        left out; `status=all` includes them; `customer` filters."""
        def listing(params: dict[str, Any]) -> Response:
            items = sorted(self.subscriptions.values(), key=lambda s: (s.get("created") or 0, s["id"]), reverse=True)
            status = params.get("status")
            if status is None:
                items = [s for s in items if s.get("status") != "canceled"]
            elif status != "all":
                items = [s for s in items if s.get("status") == status]
            if params.get("customer"):
                items = [s for s in items if s.get("customer") == params["customer"]]
            return self._list(params, items, "/v1/subscriptions", "subscription")
        return self._handle_bad_params(listing, req)

    def list_events(self, req: Request) -> Response:
        return self._handle_bad_params(self._list_events, req)

    def _list_events(self, params: dict[str, Any]) -> Response:
        events = self._live_events()
        type_, types = params.get("type"), params.get("types")
        if type_ is not None and types is not None:
            raise BadParam("You may pass either type or types, but not both.", "types")
        if type_ is not None:
            # §8.2: one name, `*` wildcard allowed.
            pattern = re.compile("^" + ".*".join(map(re.escape, str(type_).split("*"))) + "$")
            events = [e for e in events if pattern.match(e["type"])]
        if types is not None:
            if isinstance(types, str):
                types = [types]
            if len(types) > MAX_TYPES:
                raise BadParam(f"You may pass up to {MAX_TYPES} types.", "types")
            events = [e for e in events if e["type"] in types]
        created = params.get("created")
        if created is not None:
            events = [e for e in events if _created_matches(e["created"], created)]
        delivery = params.get("delivery_success")
        if delivery is not None:
            wanted = _bool_param(delivery, "delivery_success")
            events = [e for e in events if self.event_delivered[e["id"]] == wanted]
        return self._list(params, events, "/v1/events", "event")

    def retrieve_event(self, req: Request) -> Response:
        event = next((e for e in self._live_events() if e["id"] == req.args["id"]), None)
        if event is None:
            return self._missing("event", req.args["id"])
        return json_response(200, event)


def _int_param(params: dict[str, Any], name: str, default: int) -> int:
    value = params.get(name)
    if value is None:
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise BadParam(f"Invalid integer: {value}", name) from None


def _bool_param(value: Any, name: str) -> bool:
    if str(value).lower() in ("true", "false"):
        return str(value).lower() == "true"
    raise BadParam(f"Invalid boolean: {value}", name)


def _created_matches(created: int, condition: Any) -> bool:
    """`created=<int>` or `created[gt|gte|lt|lte]=<int>` (stripe.md §8.2)."""
    if not isinstance(condition, dict):
        return created == _int_param({"created": condition}, "created", 0)
    checks = {"gt": created.__gt__, "gte": created.__ge__, "lt": created.__lt__,
              "lte": created.__le__}
    for op, raw in condition.items():
        if op not in checks:
            raise BadParam(f"Invalid created operator: {op}", "created")
        if not checks[op](_int_param({op: raw}, op, 0)):
            return False
    return True
