"""A fake of HubSpot's CRM API v3: contacts and contact properties, with private-app auth.

Built from HubSpot's documentation; comments cite it by the names below. Behaviour the
documents leave open is listed, with the fake's choice, in README.md (HubSpot section).

- [contacts] https://developers.hubspot.com/docs/api/crm/contacts and the v3 OpenAPI document
  (github.com/HubSpot/HubSpot-public-api-spec-collection, PublicApiSpecs/CRM/Contacts/Rollouts/424/v3/contacts.json)
- [properties] https://developers.hubspot.com/docs/api/crm/properties and the v3 OpenAPI document
  (same repository, PublicApiSpecs/CRM/Properties/Rollouts/145899/v3/properties.json)
- [errors] https://developers.hubspot.com/docs/api-reference/error-handling and
  https://developers.hubspot.com/docs/faq/api-error-responses
- [limits] https://developers.hubspot.com/docs/api/usage-details
- [auth] https://developers.hubspot.com/docs/api/private-apps

Served: ``GET/PATCH /crm/v3/objects/contacts/{id}`` (``?idProperty=email`` too),
``POST /crm/v3/objects/contacts``, ``GET/POST /crm/v3/properties/contacts`` and
``GET /crm/v3/properties/contacts/{name}``. Not faked: lists, search, batch, associations,
archiving, property groups and OAuth.
"""

from __future__ import annotations

import itertools
import json
import re
import uuid
from typing import Any
from urllib.parse import unquote

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

DEFAULT_TOKEN = "hubspot-test-token"
PORTAL_ID = 1234567
APP_ID = 7654321
# The scopes a private app can be given for this (contacts.md "scopes"; [properties] security).
ALL_SCOPES = (
    "crm.objects.contacts.read", "crm.objects.contacts.write",
    "crm.schemas.contacts.read", "crm.schemas.contacts.write",
)
# [limits]: private apps on Free/Starter get 100 requests per 10 seconds and 250,000 a day.
DEFAULT_RATE_LIMIT = (100, 10.0)
DEFAULT_DAILY_LIMIT = 250_000

# A new account's contact properties that matter here: (name, label, type, fieldType, read-only).
DEFAULT_PROPERTIES = (
    ("email", "Email", "string", "text", False),
    ("firstname", "First Name", "string", "text", False),
    ("lastname", "Last Name", "string", "text", False),
    ("phone", "Phone Number", "string", "text", False),
    ("company", "Company Name", "string", "text", False),
    ("createdate", "Create Date", "datetime", "date", True),
    ("lastmodifieddate", "Last Modified Date", "datetime", "date", True),
    ("hs_object_id", "Record ID", "number", "number", True),
)
# Returned by a contact read without ``properties`` (the documented default set).
DEFAULT_READ = ("createdate", "email", "firstname", "hs_object_id", "lastmodifieddate", "lastname")
SYSTEM = ("createdate", "hs_object_id", "lastmodifieddate")

# [properties]: PropertyCreate enums and required fields.
TYPES = ("string", "number", "date", "datetime", "enumeration", "bool")
FIELD_TYPES = ("textarea", "text", "date", "file", "number", "select", "radio", "checkbox",
               "booleancheckbox", "calculation_equation")
FIELD_TYPES_FOR = {
    "string": ("text", "textarea", "file"), "number": ("number", "calculation_equation"),
    "date": ("date",), "datetime": ("date",), "bool": ("booleancheckbox",),
    "enumeration": ("select", "radio", "checkbox", "booleancheckbox"),
}
PROPERTY_REQUIRED = ("name", "label", "type", "fieldType", "groupName")
PROPERTY_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")

UNAUTHENTICATED = ("Authentication credentials not found. This API supports OAuth 2.0 authentication and "
                   "you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview")
MISSING_SCOPES = ("This app hasn't been granted all required scopes to make this call. Read more about "
                  "required scopes here: https://developers.hubspot.com/scopes.")
CATEGORIES = {400: "VALIDATION_ERROR", 401: "INVALID_AUTHENTICATION", 403: "MISSING_SCOPES",
              404: "OBJECT_NOT_FOUND", 409: "CONFLICT", 423: "LOCKED", 477: "MIGRATION_IN_PROGRESS"}
MESSAGES = {400: "Invalid input", 401: UNAUTHENTICATED, 403: MISSING_SCOPES, 404: "resource not found",
            409: "Conflict", 423: "This record is locked; retry after 2 seconds.",
            477: "This account is being migrated; retry later."}


def _correlation_id() -> str:
    return str(uuid.uuid4())


def _coerce(value: Any) -> str:
    """HubSpot takes property values as strings; JSON scalars are converted as it does."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, str)):
        return str(value)
    return json.dumps(value)


class FakeHubSpot(FakeServer):
    name = "hubspot"
    CONFIG_KEYS = ("rate_limit", "token", "scopes", "daily_limit")

    def __init__(
        self,
        port: int = 0,
        token: str = DEFAULT_TOKEN,
        rate_limit: tuple[int, float] | None = DEFAULT_RATE_LIMIT,
        *,
        scopes: Any = ALL_SCOPES,
        daily_limit: int | None = DEFAULT_DAILY_LIMIT,
        seed: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(port, rate_limit=rate_limit, seed=seed, token=token, scopes=tuple(scopes),
                         daily_limit=daily_limit)

    # ---- state -----------------------------------------------------------------------------

    def reset_state(self) -> None:
        self.contacts: dict[str, dict[str, Any]] = {}
        self.properties: dict[str, dict[str, Any]] = {}
        self.groups = {"contactinformation"}
        self.daily_used = 0
        self._ids = itertools.count(101)
        for name, label, type_, field_type, read_only in DEFAULT_PROPERTIES:
            self._define({"name": name, "label": label, "type": type_, "fieldType": field_type,
                          "groupName": "contactinformation"}, hubspot_defined=True, read_only=read_only)

    def add_property(self, name: str, label: str | None = None, type: str = "string",
                     field_type: str = "text", options: list[dict[str, Any]] | None = None,
                     group_name: str = "contactinformation") -> dict[str, Any]:
        """Seed a custom contact property (as if created in HubSpot's settings)."""
        with self._lock:
            return self._define({"name": name, "label": label or name, "type": type,
                                 "fieldType": field_type, "groupName": group_name,
                                 "options": options or []})

    def add_contact(self, email: str, properties: dict[str, Any] | None = None,
                    id: str | int | None = None) -> dict[str, Any]:
        """Seed a contact; unknown property names are stored anyway (seeds are trusted)."""
        with self._lock:
            values = {k: _coerce(v) for k, v in (properties or {}).items()}
            contact = self._create({**values, "email": email}, None if id is None else str(id))
            return self._inspect(contact)

    def contact(self, email: str) -> dict[str, Any] | None:
        """The contact with this e-mail (any case): ``{"id", "properties", "createdAt",
        "updatedAt", "archived"}``, or None."""
        with self._lock:
            found = self._find(email)
            return self._inspect(found) if found else None

    def seed(self, data: dict[str, Any]) -> dict[str, Any]:
        for prop in data.get("properties", []):
            if isinstance(prop, str):
                self.add_property(prop)
            else:
                self.add_property(prop["name"], prop.get("label"), prop.get("type", "string"),
                                  prop.get("fieldType", "text"), prop.get("options"),
                                  prop.get("groupName", "contactinformation"))
        contacts = [self.add_contact(c["email"], c.get("properties"), c.get("id"))
                    for c in data.get("contacts", [])]
        return {"contacts": contacts}

    def state(self) -> dict[str, Any]:
        return {
            "contacts": [self._inspect(c) for c in self.contacts.values()],
            "properties": [p for p in self.properties.values() if not p.get("hubspotDefined")],
            "daily_used": self.daily_used,
            "config": self.config(),
        }

    def _define(self, spec: dict[str, Any], *, hubspot_defined: bool = False,
                read_only: bool = False) -> dict[str, Any]:
        now = iso_now()
        options = [{"label": o.get("label", o.get("value")), "value": o.get("value"),
                    "description": o.get("description", ""), "displayOrder": o.get("displayOrder", i),
                    "hidden": bool(o.get("hidden", False))} for i, o in enumerate(spec.get("options") or [])]
        prop = {
            "name": spec["name"], "label": spec["label"], "type": spec["type"],
            "fieldType": spec["fieldType"], "description": spec.get("description", ""),
            "groupName": spec["groupName"], "options": options,
            "displayOrder": spec.get("displayOrder", -1), "calculated": False,
            "externalOptions": False, "hasUniqueValue": bool(spec.get("hasUniqueValue", False)),
            "hidden": bool(spec.get("hidden", False)), "formField": bool(spec.get("formField", False)),
            "createdAt": now, "updatedAt": now, "archived": False,
            "modificationMetadata": {"archivable": not hubspot_defined, "readOnlyDefinition": hubspot_defined,
                                     "readOnlyValue": read_only},
        }
        if hubspot_defined:
            prop["hubspotDefined"] = True
        self.properties[prop["name"]] = prop
        return prop

    def _create(self, values: dict[str, str], contact_id: str | None = None) -> dict[str, Any]:
        contact_id = contact_id or str(next(self._ids))
        now = iso_now()
        contact = {"id": contact_id, "createdAt": now, "updatedAt": now, "archived": False,
                   "properties": {**values, "createdate": now, "lastmodifieddate": now,
                                  "hs_object_id": contact_id}}
        self.contacts[contact_id] = contact
        return contact

    def _find(self, email: Any) -> dict[str, Any] | None:
        # E-mails are unique per account ([contacts]: "the primary unique identifier"); matched
        # case-insensitively (not documented).
        if not isinstance(email, str) or not email.strip():
            return None
        wanted = email.strip().lower()
        return next((c for c in self.contacts.values()
                     if (c["properties"].get("email") or "").lower() == wanted), None)

    def _inspect(self, contact: dict[str, Any]) -> dict[str, Any]:
        return {**contact, "properties": dict(contact["properties"])}

    # ---- provider hooks --------------------------------------------------------------------

    def error_response(self, status: int, message: str | None = None) -> Response:
        """[errors]: {"status": "error", "message", "correlationId", "category"}; 429 per [limits]."""
        cid = _correlation_id()
        if status == 429:
            return json_response(429, {
                "status": "error", "message": "You have reached your ten_secondly_rolling limit.",
                "errorType": "RATE_LIMIT", "correlationId": cid, "policyName": "TEN_SECONDLY_ROLLING",
                "groupName": f"publicapi:private-app-api-calls-ten-secondly:{APP_ID}",
            })
        category = CATEGORIES.get(status, "INTERNAL_ERROR" if status >= 500 else "ERROR")
        default = MESSAGES.get(status, "internal error" if status >= 500 else "error")
        body: dict[str, Any] = {"status": "error", "message": message or default, "correlationId": cid,
                                "category": category}
        return json_response(status, body)

    def authenticate(self, req: Request) -> Response | None:
        # [auth]: "Authorization: Bearer <token>"; anything else is a 401 (body per [errors]).
        if req.auth_scheme == "Bearer" and req.credential and req.credential == self.token:
            return None
        return self.error_response(401)

    def precheck(self, req: Request) -> Response | None:
        # [limits]: a daily allowance per account besides the 10-second burst.
        if self.daily_limit is not None:
            if self.daily_used >= int(self.daily_limit):
                # [limits]: the documented example body, policyName DAILY.
                return Response(429, {
                    "status": "error", "message": "You have reached your daily limit.",
                    "errorType": "RATE_LIMIT", "correlationId": _correlation_id(), "policyName": "DAILY",
                    "requestId": _correlation_id(),
                }, fault="rate_limit")
            self.daily_used += 1
        return None

    def rate_limit_key(self, req: Request) -> str:
        # [limits]: burst limits are per app; a private app is one token.
        return f"token:{req.credential}" if req.credential else f"ip:{req.client_ip}"

    def decorate(self, req: Request, resp: Response) -> None:
        """[limits]/changelog 2018-11-06: X-HubSpot-RateLimit-* headers on API responses."""
        if req.path.startswith("/_fake/"):
            return
        cid = resp.body.get("correlationId") if isinstance(resp.body, dict) else None
        resp.headers.setdefault("X-HubSpot-Correlation-Id", cid or _correlation_id())
        if req.credential != self.token:
            return
        with self._lock:
            if self.rate_limit:
                max_requests, window = self.rate_limit
                used = len(self._hits.get(self.rate_limit_key(req), ()))
                resp.headers.setdefault("X-HubSpot-RateLimit-Interval-Milliseconds", str(int(window * 1000)))
                resp.headers.setdefault("X-HubSpot-RateLimit-Max", str(max_requests))
                resp.headers.setdefault("X-HubSpot-RateLimit-Remaining", str(max(0, max_requests - used)))
            if self.daily_limit is not None:
                resp.headers.setdefault("X-HubSpot-RateLimit-Daily", str(self.daily_limit))
                resp.headers.setdefault("X-HubSpot-RateLimit-Daily-Remaining",
                                        str(max(0, int(self.daily_limit) - self.daily_used)))

    def control_routes(self) -> list[RouteSpec]:
        return [("GET", r"/_fake/contact$", self._ctl_contact)]

    def _ctl_contact(self, req: Request) -> Response:
        found = self.contact(req.q("email") or "")
        if found is None:
            return json_response(404, {"error": "no such contact"})
        return json_response(200, jsonable(found))

    def routes(self) -> list[RouteSpec]:
        contact = r"/crm/v3/objects/contacts/(?P<contact_id>[^/]+)$"
        return [
            ("POST", r"/crm/v3/objects/contacts$", self.create_contact),
            ("GET", contact, self.read_contact),
            ("PATCH", contact, self.update_contact),
            ("GET", r"/crm/v3/properties/contacts$", self.list_properties),
            ("POST", r"/crm/v3/properties/contacts$", self.create_property),
            ("GET", r"/crm/v3/properties/contacts/(?P<name>[^/]+)$", self.read_property),
        ]

    # ---- helpers ---------------------------------------------------------------------------

    def _scope(self, req: Request, *any_of: str) -> Response | None:
        """403 MISSING_SCOPES unless the app was granted one of ``any_of``."""
        if set(any_of) & set(self.scopes):
            return None
        resp = self.error_response(403)
        assert isinstance(resp.body, dict)
        resp.body["errors"] = [{"message": "One or more of the following scopes are required.",
                                "context": {"requiredGranularScopes": list(any_of)}}]
        resp.body["links"] = {"scopes": "https://developers.hubspot.com/scopes"}
        return resp

    def _invalid_values(self, items: list[dict[str, Any]]) -> Response:
        # [errors]: CRM object APIs put the failing checks in the message; the shape of each
        # entry is HubSpot's ({"isValid", "message", "error", "name", ...}).
        detail = json.dumps(items, separators=(",", ":"))
        return self.error_response(400, f"Property values were not valid: {detail}")

    def _validate(self, values: Any) -> tuple[dict[str, str], Response | None]:
        if not isinstance(values, dict):
            return {}, self.error_response(400, "Invalid input JSON: 'properties' must be an object")
        clean: dict[str, str] = {}
        items = []
        for name, raw in values.items():
            value = _coerce(raw)
            prop = self.properties.get(name)

            def invalid(code: str, message: str, name: str = name) -> None:
                items.append({"isValid": False, "message": message, "error": code, "name": name,
                              "localizedErrorMessage": message, "portalId": PORTAL_ID})

            if prop is None:
                invalid("PROPERTY_DOESNT_EXIST", f'Property "{name}" does not exist')
            elif prop["modificationMetadata"]["readOnlyValue"]:
                invalid("READ_ONLY_VALUE", f'"{name}" is a read only property; its value cannot be set.')
            elif name == "email" and value and not email_is_valid(value.strip()):
                invalid("INVALID_EMAIL", f"Email address {value} is invalid")
            elif prop["type"] in ("bool", "enumeration") and value:
                allowed = [o["value"] for o in prop["options"]] or (["true", "false"] if prop["type"] == "bool" else [])
                chosen = value.split(";") if prop["fieldType"] == "checkbox" else [value]
                if any(v not in allowed for v in chosen):
                    invalid("INVALID_OPTION", f"{value} was not one of the allowed options: [{', '.join(allowed)}]")
                else:
                    clean[name] = value
            else:
                clean[name] = value.strip() if name == "email" else value
        return clean, (self._invalid_values(items) if items else None)

    def _target(self, req: Request) -> tuple[dict[str, Any] | None, Response | None]:
        """The contact named in the path: by id, or by ``idProperty=email`` ([contacts])."""
        key = unquote(req.args["contact_id"])
        id_property = req.q("idProperty")
        if id_property in (None, "", "hs_object_id"):
            return self.contacts.get(key), None
        if id_property == "email":
            return self._find(key), None
        prop = self.properties.get(id_property)
        if prop is None or not prop["hasUniqueValue"]:
            return None, self.error_response(
                400, f"Unable to perform lookup by non-unique 0-1 property {id_property}")
        return next((c for c in self.contacts.values() if c["properties"].get(id_property) == key), None), None

    def _requested(self, req: Request) -> list[str]:
        names = [n.strip() for v in req.query.get("properties", []) for n in v.split(",") if n.strip()]
        return names or list(DEFAULT_READ)

    def _contact_json(self, contact: dict[str, Any], names: list[str]) -> dict[str, Any]:
        # Unknown names are ignored; known ones without a value come back as null ([contacts]).
        shown = {n: contact["properties"].get(n) for n in names if n in self.properties}
        shown.update({n: contact["properties"].get(n) for n in SYSTEM})
        return {"id": contact["id"], "properties": shown, "createdAt": contact["createdAt"],
                "updatedAt": contact["updatedAt"], "archived": False}

    def _body_properties(self, req: Request) -> Any:
        return req.body.get("properties") if isinstance(req.body, dict) else None

    # ---- contacts --------------------------------------------------------------------------

    def read_contact(self, req: Request) -> Response:
        denied = self._scope(req, "crm.objects.contacts.read", "crm.objects.contacts.write")
        if denied:
            return denied
        contact, error = self._target(req)
        if error:
            return error
        if contact is None:
            return self.error_response(404)
        return json_response(200, self._contact_json(contact, self._requested(req)))

    def create_contact(self, req: Request) -> Response:
        denied = self._scope(req, "crm.objects.contacts.write")
        if denied:
            return denied
        values, error = self._validate(self._body_properties(req))
        if error:
            return error
        existing = self._find(values.get("email"))
        if existing is not None:
            # [contacts]/[errors]: a second contact with the same e-mail is refused.
            return self.error_response(409, f"Contact already exists. Existing ID: {existing['id']}")
        contact = self._create(values)
        return json_response(201, self._contact_json(contact, list(values)), changed=True)

    def update_contact(self, req: Request) -> Response:
        denied = self._scope(req, "crm.objects.contacts.write")
        if denied:
            return denied
        contact, error = self._target(req)
        if error:
            return error
        if contact is None:
            return self.error_response(404)
        values, error = self._validate(self._body_properties(req))
        if error:
            return error
        other = self._find(values.get("email"))
        if other is not None and other is not contact:
            return self.error_response(409, f"Contact already exists. Existing ID: {other['id']}")
        current = contact["properties"]
        changed = any((current.get(k) or "") != v for k, v in values.items())
        if changed:
            now = iso_now()
            current.update(values)
            current["lastmodifieddate"] = contact["updatedAt"] = now
        return json_response(200, self._contact_json(contact, list(values)), changed=changed)

    # ---- properties ------------------------------------------------------------------------

    def list_properties(self, req: Request) -> Response:
        denied = self._scope(req, "crm.schemas.contacts.read", "crm.objects.contacts.read",
                             "crm.schemas.contacts.write")
        if denied:
            return denied
        return json_response(200, {"results": list(self.properties.values())})

    def read_property(self, req: Request) -> Response:
        denied = self._scope(req, "crm.schemas.contacts.read", "crm.objects.contacts.read",
                             "crm.schemas.contacts.write")
        if denied:
            return denied
        prop = self.properties.get(unquote(req.args["name"]))
        if prop is None:
            return self.error_response(404, f"Unable to find property {unquote(req.args['name'])}")
        return json_response(200, prop)

    def create_property(self, req: Request) -> Response:
        denied = self._scope(req, "crm.schemas.contacts.write")
        if denied:
            return denied
        spec = req.body if isinstance(req.body, dict) else {}
        missing = [f for f in PROPERTY_REQUIRED if not spec.get(f)]
        if missing:
            return self.error_response(400, f"Missing required field(s): {', '.join(missing)}")
        name, type_, field_type = spec["name"], spec["type"], spec["fieldType"]
        problem = None
        if not isinstance(name, str) or not PROPERTY_NAME_RE.match(name):
            problem = f"Invalid property name {name!r}: use lower case letters, digits and underscores"
        elif type_ not in TYPES:
            problem = f"Invalid type {type_!r}; expected one of {', '.join(TYPES)}"
        elif field_type not in FIELD_TYPES or field_type not in FIELD_TYPES_FOR[type_]:
            problem = f"fieldType {field_type!r} cannot be used with type {type_!r}"
        elif spec["groupName"] not in self.groups:
            problem = f"Property group {spec['groupName']!r} does not exist"
        elif type_ in ("enumeration", "bool") and not spec.get("options"):
            problem = "options are required for enumeration and bool properties"
        elif any(not isinstance(o, dict) or not o.get("label") or "value" not in o
                 for o in spec.get("options") or []):
            problem = "every option needs a label and a value"
        if problem:
            return self.error_response(400, problem)
        if name in self.properties:
            # [properties] (v2 create): "Returns a 409 Conflict ... if there is already a
            # property with the 'name'"; the category is the fake's choice.
            resp = self.error_response(409, f"Property named '{name}' already exists.")
            assert isinstance(resp.body, dict)
            resp.body["category"] = "OBJECT_ALREADY_EXISTS"
            return resp
        prop = self._define(spec)
        return json_response(201, prop, changed=True)
