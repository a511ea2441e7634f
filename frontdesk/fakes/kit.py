"""A fake of the Kit (ConvertKit) API v4, built from shared/providers/kit.md.

Section numbers in comments (§5.1 …) refer to that document. Not faked: the signed webhook
sender, legacy webhooks, and purchases/bulk beyond the 403 an API key gets (§1).
"""

from __future__ import annotations

import base64
import itertools
import json
import re
from typing import Any

from .base import (
    FakeServer,
    Request,
    Response,
    RouteSpec,
    email_is_valid,
    iso_now,
    json_response,
    jsonable,
)

# kit.md §5: subscriber states.
STATES = ("active", "cancelled", "bounced", "complained", "inactive")
# kit.md §4: cursor pagination, per_page default 500, max 1000.
DEFAULT_PER_PAGE = 500
MAX_PER_PAGE = 1000
# kit.md §5.2: more than 10 custom fields → 202; at most 140 per call.
ASYNC_FIELDS_ABOVE = 10
MAX_FIELDS = 140

INVALID_EMAIL = "Email address is invalid"
TAG_NEEDS_SUBSCRIBER = "Either subscriber id or email address is required to tag subscriber"
OAUTH_ONLY = "This endpoint requires OAuth authentication; API keys are not accepted."


class FakeKit(FakeServer):
    name = "kit"
    CONFIG_KEYS = (
        "rate_limit", "oauth_rate_limit", "oauth_tokens", "unknown_subscriber_status",
        "untag_missing_status", "upsert_updates_fields",
    )
    CHOICES = {"unknown_subscriber_status": (404, 422), "untag_missing_status": (404, 204)}

    def __init__(
        self,
        port: int = 0,
        api_key: str = "kit-test-key",
        rate_limit: tuple[int, float] | None = (120, 60.0),
        oauth_tokens: Any = (),
        *,
        oauth_rate_limit: tuple[int, float] | None = (600, 60.0),
        unknown_subscriber_status: int = 404,
        untag_missing_status: int = 404,
        upsert_updates_fields: bool = False,
        seed: dict[str, Any] | None = None,
    ) -> None:
        self.api_key = api_key
        super().__init__(
            port, rate_limit=rate_limit, seed=seed,
            oauth_rate_limit=tuple(oauth_rate_limit) if oauth_rate_limit else None,
            oauth_tokens=tuple(oauth_tokens), unknown_subscriber_status=unknown_subscriber_status,
            untag_missing_status=untag_missing_status, upsert_updates_fields=upsert_updates_fields,
        )

    # ---- state -----------------------------------------------------------------------------

    def reset_state(self) -> None:
        self.subscribers: dict[int, dict[str, Any]] = {}
        self.tags: dict[int, dict[str, Any]] = {}
        self.sequences: dict[int, dict[str, Any]] = {}
        self.custom_fields: dict[int, dict[str, Any]] = {}
        self.taggings: dict[tuple[int, int], str] = {}  # (tag id, subscriber id) → tagged_at
        self.enrolments: dict[tuple[int, int], str] = {}  # (sequence id, subscriber id) → added_at
        self._subscriber_ids = itertools.count(100001)

    def add_tag(self, id: int, name: str) -> dict[str, Any]:
        with self._lock:
            self.tags[int(id)] = {"id": int(id), "name": name, "created_at": iso_now(False)}
            return self.tags[int(id)]

    def add_sequence(self, id: int, name: str) -> dict[str, Any]:
        with self._lock:
            self.sequences[int(id)] = {"id": int(id), "name": name, "hold": False,
                                       "repeat": False, "created_at": iso_now(False)}
            return self.sequences[int(id)]

    def add_custom_field(self, key: str, label: str, id: int | None = None) -> dict[str, Any]:
        with self._lock:
            field_id = int(id) if id is not None else max(self.custom_fields, default=0) + 1
            field = {"id": field_id, "name": f"ck_field_{field_id}_{key}", "key": key,
                     "label": label}
            self.custom_fields[field_id] = field
            return field

    def add_subscriber(
        self,
        email: str,
        first_name: str | None = None,
        state: str = "active",
        fields: dict[str, Any] | None = None,
        tag_ids: Any = (),
        sequence_ids: Any = (),
        id: int | None = None,
    ) -> dict[str, Any]:
        """Seed a subscriber; unknown field keys are stored anyway (seeds are trusted)."""
        if state not in STATES:
            raise ValueError(f"state must be one of {STATES}")
        with self._lock:
            sub = self._create(email, first_name, state, id)
            sub["fields"].update(fields or {})
            for tid in tag_ids:
                if int(tid) not in self.tags:
                    raise ValueError(f"unknown tag {tid!r}: seed it first")
                self.taggings[(int(tid), sub["id"])] = iso_now(False)
            for qid in sequence_ids:
                if int(qid) not in self.sequences:
                    raise ValueError(f"unknown sequence {qid!r}: seed it first")
                self.enrolments[(int(qid), sub["id"])] = iso_now(False)
            return self._inspect(sub)

    def subscriber(self, email: str) -> dict[str, Any] | None:
        """The subscriber with this e-mail (any case), with its tag ids, sequence ids, fields."""
        with self._lock:
            sub = self._find(email)
            return self._inspect(sub) if sub else None

    def seed(self, data: dict[str, Any]) -> dict[str, Any]:
        for t in data.get("tags", []):
            self.add_tag(t["id"], t["name"])
        for s in data.get("sequences", []):
            self.add_sequence(s["id"], s["name"])
        for f in data.get("custom_fields", []):
            self.add_custom_field(f["key"], f.get("label") or f["key"], f.get("id"))
        subscribers = [self.add_subscriber(**s) for s in data.get("subscribers", [])]
        return {"subscribers": subscribers}

    def state(self) -> dict[str, Any]:
        return {
            "subscribers": [self._inspect(s) for s in self.subscribers.values()],
            "tags": list(self.tags.values()),
            "sequences": list(self.sequences.values()),
            "custom_fields": list(self.custom_fields.values()),
            "config": self.config(),
        }

    def _create(self, email: str, first_name: str | None, state: str,
                id: int | None = None) -> dict[str, Any]:
        sub_id = int(id) if id is not None else next(self._subscriber_ids)
        sub = {"id": sub_id, "first_name": first_name, "email_address": email.strip(),
               "state": state, "created_at": iso_now(False), "fields": {}}
        self.subscribers[sub_id] = sub
        return sub

    def _find(self, email: Any) -> dict[str, Any] | None:
        # Not documented: the fake matches e-mails case-insensitively.
        if not isinstance(email, str):
            return None
        wanted = email.strip().lower()
        return next((s for s in self.subscribers.values()
                     if s["email_address"].lower() == wanted), None)

    def _inspect(self, sub: dict[str, Any]) -> dict[str, Any]:
        return {
            **sub, "fields": dict(sub["fields"]),
            "tag_ids": {t for (t, s) in self.taggings if s == sub["id"]},
            "sequence_ids": {q for (q, s) in self.enrolments if s == sub["id"]},
        }

    def _field_keys(self) -> set[str]:
        return {f["key"] for f in self.custom_fields.values()}

    def subscriber_json(self, sub: dict[str, Any]) -> dict[str, Any]:
        # §5: {id, first_name, email_address, state, created_at, fields}; every defined field
        # key appears, null when unset.
        fields = {key: None for key in sorted(self._field_keys())}
        fields.update({k: v for k, v in sub["fields"].items() if k in fields})
        return {"id": sub["id"], "first_name": sub["first_name"],
                "email_address": sub["email_address"], "state": sub["state"],
                "created_at": sub["created_at"], "fields": fields}

    # ---- provider hooks --------------------------------------------------------------------

    def error_response(self, status: int, message: str | None = None) -> Response:
        if status == 429:
            # §2: plain text `Retry later`, not JSON, no Retry-After header.
            return Response(429, "Retry later", content_type="text/plain; charset=utf-8")
        defaults = {401: "The access token is invalid", 404: "Not Found", 403: "Forbidden",
                    400: "Bad Request", 422: "Unprocessable Entity"}
        default = defaults.get(status, "Internal Server Error" if status >= 500 else "Error")
        return json_response(status, {"errors": [message or default]})

    def authenticate(self, req: Request) -> Response | None:
        # §1: `X-Kit-Api-Key` for V4 keys, `Authorization: Bearer` for OAuth access tokens.
        if req.auth_scheme == "X-Kit-Api-Key" and req.credential == self.api_key:
            return None
        if req.auth_scheme == "Bearer" and req.credential in self.oauth_tokens:
            return None
        return self.error_response(401)

    def rate_limit_key(self, req: Request) -> str:
        # §3: per credential, not per account or IP.
        if req.credential:
            return f"{req.auth_scheme}:{req.credential}"
        return f"ip:{req.client_ip}"

    def rate_limit_for(self, req: Request) -> tuple[int, float] | None:
        # §3: API key 120 / 60 s; OAuth access token 600 / 60 s.
        return self.oauth_rate_limit if req.auth_scheme == "Bearer" else self.rate_limit

    def control_routes(self) -> list[RouteSpec]:
        return [("GET", r"/_fake/subscriber$", self._ctl_subscriber)]

    def _ctl_subscriber(self, req: Request) -> Response:
        found = self.subscriber(req.q("email") or "")
        if found is None:
            return json_response(404, {"error": "no such subscriber"})
        return json_response(200, jsonable(found))

    def routes(self) -> list[RouteSpec]:
        sub_id = r"(?P<sub_id>\d+)"
        return [
            ("POST", r"/v4/subscribers$", self.upsert_subscriber),
            ("GET", r"/v4/subscribers$", self.list_subscribers),
            ("GET", rf"/v4/subscribers/{sub_id}$", self.show_subscriber),
            ("PUT", rf"/v4/subscribers/{sub_id}$", self.update_subscriber),
            ("POST", rf"/v4/subscribers/{sub_id}/unsubscribe$", self.unsubscribe),
            ("GET", rf"/v4/subscribers/{sub_id}/tags$", self.subscriber_tags),
            ("GET", r"/v4/tags$", self.list_tags),
            ("POST", r"/v4/tags$", self.create_tag),
            ("POST", r"/v4/tags/(?P<tag_id>\d+)/subscribers$", self.tag_by_email),
            ("POST", rf"/v4/tags/(?P<tag_id>\d+)/subscribers/{sub_id}$", self.tag_by_id),
            ("DELETE", r"/v4/tags/(?P<tag_id>\d+)/subscribers$", self.untag_by_email),
            ("DELETE", rf"/v4/tags/(?P<tag_id>\d+)/subscribers/{sub_id}$", self.untag_by_id),
            ("GET", r"/v4/sequences$", self.list_sequences),
            ("POST", r"/v4/sequences/(?P<seq_id>\d+)/subscribers$", self.enrol_by_email),
            ("POST", rf"/v4/sequences/(?P<seq_id>\d+)/subscribers/{sub_id}$", self.enrol_by_id),
            ("GET", r"/v4/custom_fields$", self.list_custom_fields),
            ("POST", r"/v4/custom_fields$", self.create_custom_field),
            ("PUT", r"/v4/custom_fields/(?P<field_id>\d+)$", self.update_custom_field),
            ("DELETE", r"/v4/custom_fields/(?P<field_id>\d+)$", self.delete_custom_field),
            # §1: OAuth-only endpoints.
            ("POST", r"/v4/purchases$", self.oauth_only),
            ("GET", r"/v4/purchases(/\d+)?$", self.oauth_only),
            ("POST", r"/v4/bulk/", self.oauth_only),
        ]

    # ---- helpers ---------------------------------------------------------------------------

    def _invalid(self, message: str) -> Response:
        return self.error_response(422, message)

    def _paginate(self, req: Request, key: str, items: list[dict[str, Any]]) -> Response:
        """§4: cursor pagination over items ordered by id (ascending)."""
        try:
            per_page = int(req.q("per_page") or DEFAULT_PER_PAGE)
            after = _decode_cursor(req.q("after"))
            before = _decode_cursor(req.q("before"))
        except ValueError:
            return self._invalid("Invalid pagination parameters")
        if per_page < 1:
            return self._invalid("per_page must be greater than 0")
        per_page = min(per_page, MAX_PER_PAGE)
        if after is not None:
            page = [i for i in items if i["id"] > after][:per_page]
        elif before is not None:
            page = [i for i in items if i["id"] < before][-per_page:]
        else:
            page = items[:per_page]
        if page:
            first, last = items.index(page[0]), items.index(page[-1])
            has_previous, has_next = first > 0, last < len(items) - 1
        else:
            has_previous = after is not None and any(i["id"] <= after for i in items)
            has_next = before is not None and any(i["id"] >= before for i in items)
        pagination: dict[str, Any] = {
            "has_previous_page": has_previous, "has_next_page": has_next,
            "start_cursor": _encode_cursor(page[0]["id"]) if page else None,
            "end_cursor": _encode_cursor(page[-1]["id"]) if page else None,
            "per_page": per_page,
        }
        if (req.q("include_total_count") or "").lower() == "true":
            pagination["total_count"] = len(items)
        return json_response(200, {key: page, "pagination": pagination})

    def _target_subscriber(self, req: Request) -> dict[str, Any] | Response:
        """The subscriber named by `email_address` (or `id`) in the body, or an error response."""
        sub_id = req.param("id")
        if sub_id is not None:
            sub = self.subscribers.get(_int(sub_id) or -1)
            return sub if sub else self.error_response(404)
        email = req.param("email_address")
        if not email:
            return self._invalid(TAG_NEEDS_SUBSCRIBER)
        if not email_is_valid(email):
            return self._invalid(INVALID_EMAIL)
        sub = self._find(email)
        if sub is None:
            # §5: "The subscriber being tagged must already exist"; status not documented.
            if int(self.unknown_subscriber_status) == 422:
                return self._invalid("Subscriber not found")
            return self.error_response(404)
        return sub

    # ---- subscribers -----------------------------------------------------------------------

    def upsert_subscriber(self, req: Request) -> Response:
        body = req.body if isinstance(req.body, dict) else {}
        email = body.get("email_address")
        if not email_is_valid(email):
            return self._invalid(INVALID_EMAIL)
        fields = body.get("fields") or {}
        if not isinstance(fields, dict):
            return self._invalid("Fields must be an object")
        if len(fields) > MAX_FIELDS:
            return self._invalid(f"A maximum of {MAX_FIELDS} custom fields can be set at once")
        known = self._field_keys()
        # §5.2: unknown keys are ignored and reported in `warnings`.
        warnings = [f"Custom field '{k}' does not exist and was ignored"
                    for k in fields if k not in known]
        valid_fields = {k: v for k, v in fields.items() if k in known}
        sub = self._find(email)
        if sub is None:
            state = body.get("state") or "active"
            if state not in STATES:
                return self._invalid(f"State must be one of: {', '.join(STATES)}")
            sub = self._create(email, body.get("first_name"), state)
            sub["fields"].update(valid_fields)
            status, changed = 201, True
        else:
            # §5 / §8: an existing e-mail answers 200 and updates the first name only; `state`
            # is never changed through this endpoint.
            before = (sub["first_name"], dict(sub["fields"]))
            if "first_name" in body:
                sub["first_name"] = body["first_name"]
            if self.upsert_updates_fields:
                sub["fields"].update(valid_fields)
            status, changed = 200, before != (sub["first_name"], sub["fields"])
        if len(fields) > ASYNC_FIELDS_ABOVE:
            status = 202  # §5: fields added asynchronously (the fake applies them at once)
        payload: dict[str, Any] = {"subscriber": self.subscriber_json(sub)}
        if warnings:
            payload["warnings"] = warnings
        return json_response(status, payload, changed=changed)

    def list_subscribers(self, req: Request) -> Response:
        status = req.q("status") or "active"  # §5: default `active`
        if status not in STATES + ("all",):
            return self._invalid(f"Status must be one of: {', '.join(STATES + ('all',))}")
        subs = sorted(self.subscribers.values(), key=lambda s: s["id"])
        if status != "all":
            subs = [s for s in subs if s["state"] == status]
        email = req.q("email_address")
        if email is not None:
            if not email_is_valid(email):
                return self._invalid(INVALID_EMAIL)  # §5: invalid e-mail → 4xx
            subs = [s for s in subs if s["email_address"].lower() == email.strip().lower()]
        return self._paginate(req, "subscribers", [self.subscriber_json(s) for s in subs])

    def _subscriber(self, req: Request) -> dict[str, Any] | None:
        return self.subscribers.get(int(req.args["sub_id"]))

    def show_subscriber(self, req: Request) -> Response:
        sub = self._subscriber(req)
        if sub is None:
            return self.error_response(404)
        return json_response(200, {"subscriber": self.subscriber_json(sub)})

    def update_subscriber(self, req: Request) -> Response:
        sub = self._subscriber(req)
        if sub is None:
            return self.error_response(404)
        body = req.body if isinstance(req.body, dict) else {}
        before = (sub["first_name"], sub["email_address"], dict(sub["fields"]))
        if "email_address" in body:
            email = body["email_address"]
            if not email_is_valid(email):
                return self._invalid(INVALID_EMAIL)
            other = self._find(email)
            if other is not None and other is not sub:
                # §5.3: a clash with another subscriber is not documented; the fake refuses.
                return self._invalid("Email address has already been taken")
            sub["email_address"] = email.strip()
        if "first_name" in body:
            sub["first_name"] = body["first_name"]
        known = self._field_keys()
        sub["fields"].update({k: v for k, v in (body.get("fields") or {}).items() if k in known})
        changed = before != (sub["first_name"], sub["email_address"], sub["fields"])
        return json_response(200, {"subscriber": self.subscriber_json(sub)}, changed=changed)

    def unsubscribe(self, req: Request) -> Response:
        sub = self._subscriber(req)
        if sub is None:
            return self.error_response(404)
        changed = sub["state"] != "cancelled"
        sub["state"] = "cancelled"  # §8: sets `state: cancelled`; empty body (204, inferred)
        return Response(204, changed=changed)

    def subscriber_tags(self, req: Request) -> Response:
        sub = self._subscriber(req)
        if sub is None:
            return self.error_response(404)
        tags = [{**self.tags[t], "tagged_at": at} for (t, s), at in self.taggings.items()
                if s == sub["id"] and t in self.tags]
        return self._paginate(req, "tags", sorted(tags, key=lambda t: t["id"]))

    # ---- tags ------------------------------------------------------------------------------

    def list_tags(self, req: Request) -> Response:
        return self._paginate(req, "tags", sorted(self.tags.values(), key=lambda t: t["id"]))

    def create_tag(self, req: Request) -> Response:
        name = str(req.param("name") or "").strip()
        if not name:
            return self._invalid("Name can't be blank")
        existing = next((t for t in self.tags.values() if t["name"].lower() == name.lower()), None)
        if existing is not None:  # not in kit.md: the fake answers 200 with the existing tag
            return json_response(200, {"tag": existing})
        tag = self.add_tag(max(self.tags, default=0) + 1, name)
        return json_response(201, {"tag": tag}, changed=True)

    def _tag(self, req: Request, sub: dict[str, Any]) -> Response:
        tag_id = int(req.args["tag_id"])
        key = (tag_id, sub["id"])
        # §5.1: 201 when tagged now, 200 "when the subscriber already has the tag".
        created = key not in self.taggings
        if created:
            self.taggings[key] = iso_now(False)
        payload = {"subscriber": {**self.subscriber_json(sub), "tagged_at": self.taggings[key]}}
        return json_response(201 if created else 200, payload, changed=created)

    def tag_by_email(self, req: Request) -> Response:
        if int(req.args["tag_id"]) not in self.tags:
            return self.error_response(404)
        sub = self._target_subscriber(req)
        return sub if isinstance(sub, Response) else self._tag(req, sub)

    def tag_by_id(self, req: Request) -> Response:
        sub = self._subscriber(req)
        if int(req.args["tag_id"]) not in self.tags or sub is None:
            return self.error_response(404)
        return self._tag(req, sub)

    def _untag(self, req: Request, sub: dict[str, Any]) -> Response:
        key = (int(req.args["tag_id"]), sub["id"])
        if key not in self.taggings:
            # §5.1: not documented for a subscriber without the tag; 404 by default.
            if int(self.untag_missing_status) == 204:
                return Response(204)
            return self.error_response(404)
        del self.taggings[key]
        return Response(204, changed=True)

    def untag_by_id(self, req: Request) -> Response:
        sub = self._subscriber(req)
        if int(req.args["tag_id"]) not in self.tags or sub is None:
            return self.error_response(404)
        return self._untag(req, sub)

    def untag_by_email(self, req: Request) -> Response:
        if int(req.args["tag_id"]) not in self.tags:
            return self.error_response(404)
        sub = self._target_subscriber(req)
        return sub if isinstance(sub, Response) else self._untag(req, sub)

    # ---- sequences -------------------------------------------------------------------------

    def list_sequences(self, req: Request) -> Response:
        items = sorted(self.sequences.values(), key=lambda s: s["id"])
        return self._paginate(req, "sequences", items)

    def _enrol(self, req: Request, sub: dict[str, Any]) -> Response:
        key = (int(req.args["seq_id"]), sub["id"])
        # §5.1: 201 when added, 200 "when the subscriber has already been added".
        created = key not in self.enrolments
        if created:
            self.enrolments[key] = iso_now(False)
        payload = {"subscriber": {**self.subscriber_json(sub), "added_at": self.enrolments[key]}}
        return json_response(201 if created else 200, payload, changed=created)

    def enrol_by_email(self, req: Request) -> Response:
        if int(req.args["seq_id"]) not in self.sequences:
            return self.error_response(404)
        sub = self._target_subscriber(req)
        return sub if isinstance(sub, Response) else self._enrol(req, sub)

    def enrol_by_id(self, req: Request) -> Response:
        sub = self._subscriber(req)
        if int(req.args["seq_id"]) not in self.sequences or sub is None:
            return self.error_response(404)
        return self._enrol(req, sub)

    # ---- custom fields ---------------------------------------------------------------------

    def list_custom_fields(self, req: Request) -> Response:
        items = sorted(self.custom_fields.values(), key=lambda f: f["id"])
        return self._paginate(req, "custom_fields", items)

    def create_custom_field(self, req: Request) -> Response:
        label = str(req.param("label") or "").strip()
        if not label:
            return self._invalid("Label can't be blank")
        if any(f["label"].lower() == label.lower() for f in self.custom_fields.values()):
            return self._invalid("Label has already been taken")
        # §5: values are keyed by the field's `key` (e.g. `last_name` for "Last Name").
        field = self.add_custom_field(_field_key(label), label)
        return json_response(201, {"custom_field": field}, changed=True)

    def update_custom_field(self, req: Request) -> Response:
        field = self.custom_fields.get(int(req.args["field_id"]))
        if field is None:
            return self.error_response(404)
        label = str(req.param("label") or "").strip()
        if not label:
            return self._invalid("Label can't be blank")
        changed = label != field["label"]
        field["label"] = label  # the key stays: stored values remain reachable
        return json_response(200, {"custom_field": field}, changed=changed)

    def delete_custom_field(self, req: Request) -> Response:
        field = self.custom_fields.pop(int(req.args["field_id"]), None)
        if field is None:
            return self.error_response(404)
        for sub in self.subscribers.values():
            sub["fields"].pop(field["key"], None)
        return Response(204, changed=True)

    # ---- OAuth-only ------------------------------------------------------------------------

    def oauth_only(self, req: Request) -> Response:
        if req.auth_scheme != "Bearer":
            # §1: an API key gets a 4xx; the exact status is not documented, 403 as in kit-mcp.
            return self.error_response(403, OAUTH_ONLY)
        return self.error_response(501, "Purchases and bulk endpoints are not faked")


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _encode_cursor(item_id: int) -> str:
    return base64.b64encode(json.dumps([item_id]).encode()).decode()


def _decode_cursor(cursor: str | None) -> int | None:
    if not cursor:
        return None
    try:
        (item_id,) = json.loads(base64.b64decode(cursor, validate=True))
        return int(item_id)
    except Exception as exc:  # any garbage cursor is the client's mistake
        raise ValueError(f"bad cursor {cursor!r}") from exc


def _field_key(label: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", label.lower()).strip("_")
