"""HubSpot CRM API v3, authenticated with a private app's access token.

Built from HubSpot's documentation; comments cite these by the name in brackets:

- [contacts] https://developers.hubspot.com/docs/api/crm/contacts and the v3 OpenAPI document
  (github.com/HubSpot/HubSpot-public-api-spec-collection, PublicApiSpecs/CRM/Contacts/Rollouts/424/v3/contacts.json)
- [properties] https://developers.hubspot.com/docs/api/crm/properties
- [errors] https://developers.hubspot.com/docs/api-reference/error-handling and
  https://developers.hubspot.com/docs/faq/api-error-responses
- [limits] https://developers.hubspot.com/docs/api/usage-details
- [auth] https://developers.hubspot.com/docs/api/private-apps

Contacts are found by e-mail with ``idProperty=email`` and then changed by their id, so every
write here is safe to repeat: a create that races another one gets 409 and the id to use.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

import httpx
from django.conf import settings

from frontdesk.connectors.http import (
    AUTH,
    TRANSIENT,
    ProviderClient,
    ProviderError,
    json_body,
    parse_retry_after,
)

DEFAULT_API_URL = "https://api.hubapi.com"
CONTACTS = "/crm/v3/objects/contacts"
CONTACT_PROPERTIES = "/crm/v3/properties/contacts"

# [limits]: the daily limit "resets at midnight based on your time zone setting", which the API
# does not tell us; one probe an hour is cheap and never far behind the reset.
DAILY_LIMIT_WAIT = 3600.0
# [errors] 423 Locked: "Locks will last for 2 seconds ... include a delay of at least 2 seconds".
LOCKED_WAIT = 2.0
# [errors]/[contacts]: a create with an e-mail that exists answers 409
# {"message": "Contact already exists. Existing ID: 12345", "category": "CONFLICT"}.
EXISTING_ID = re.compile(r"Existing ID:\s*(\d+)")
# Validation errors name the failing check inside the message ("Property values were not
# valid: [{... "error": "PROPERTY_DOESNT_EXIST", "name": "x"}]"); first match wins.
VALIDATION_REASONS = (
    ("PROPERTY_DOESNT_EXIST", "hubspot_property_missing"),
    ("INVALID_EMAIL", "hubspot_invalid_email"),
    ("INVALID_OPTION", "hubspot_invalid_value"),
    ("READ_ONLY_VALUE", "hubspot_invalid_value"),
)


class ContactExists(ProviderError):
    """A create refused because a contact already has this e-mail; ``existing_id`` is its id
    when HubSpot said so."""

    def __init__(self, error: ProviderError, existing_id: str | None) -> None:
        super().__init__(error.provider, error.kind, error.reason, error.message,
                         status=error.status, retry_after=error.retry_after)
        self.existing_id = existing_id


def contact_path(email: str) -> str:
    # [contacts]: "include the email/property value in the request URL path, and add the
    # idProperty query parameter". The '@' stays literal so error texts that carry the path are
    # still recognised as e-mails and redacted.
    return f"{CONTACTS}/{quote(email, safe='@')}"


class HubSpotClient(ProviderClient):
    provider = "hubspot"

    @classmethod
    def from_settings(cls) -> HubSpotClient:
        token = getattr(settings, "HUBSPOT_ACCESS_TOKEN", "") or ""
        if not token:
            raise ProviderError("hubspot", AUTH, "hubspot_token_missing", "HUBSPOT_ACCESS_TOKEN is not set")
        base_url = getattr(settings, "HUBSPOT_API_URL", "") or DEFAULT_API_URL
        # [auth]: private app tokens go in "Authorization: Bearer <token>".
        return cls(base_url, {"Authorization": f"Bearer {token}", "Accept": "application/json"})

    # ---- errors ----------------------------------------------------------------------------

    def error_message(self, response: httpx.Response) -> str:
        # [errors]: {"status": "error", "message": ..., "correlationId": ..., "category": ...};
        # "all fields ... should be treated as optional". 429s carry errorType instead.
        body = json_body(response)
        message = body.get("message")
        if not isinstance(message, str) or not message:
            return response.text[:200]
        category = body.get("category") or body.get("errorType")
        text = f"{category}: {message}" if category else message
        if body.get("correlationId"):
            text += f" (correlationId {body['correlationId']})"
        return text[:400]

    def classify(self, method: str, path: str, response: httpx.Response) -> ProviderError:
        error = super().classify(method, path, response)
        code = response.status_code
        body = json_body(response)
        if code == 429:
            # [limits]: "The message and policyName will indicate which limit you hit (either
            # daily or secondly)". The burst window is 10 s; with no Retry-After the ledger
            # waits HUBSPOT_RATE_LIMIT_WAIT.
            if str(body.get("policyName", "")).upper() == "DAILY":
                error.reason = "hubspot_daily_limit"
                if error.retry_after is None:
                    error.retry_after = DAILY_LIMIT_WAIT
        elif code == 423:
            error.kind, error.reason = TRANSIENT, "hubspot_locked"
            error.retry_after = parse_retry_after(response.headers.get("Retry-After")) or LOCKED_WAIT
        elif code == 477:
            # [errors] 477 Migration in Progress: "HubSpot will return a Retry-After response
            # header indicating how many seconds to wait".
            error.kind, error.reason = TRANSIENT, "hubspot_migration_in_progress"
            error.retry_after = parse_retry_after(response.headers.get("Retry-After"))
        elif code == 403 and body.get("category") == "MISSING_SCOPES":
            # Still an auth failure (every job would fail alike): the lane pauses.
            error.reason = "hubspot_missing_scopes"
        elif code == 400:
            error.reason = next((reason for marker, reason in VALIDATION_REASONS if marker in response.text),
                                "hubspot_validation_failed")
        elif code == 404:
            error.reason = "hubspot_not_found"
        elif code == 409:
            error.reason = "hubspot_conflict"
            found = EXISTING_ID.search(str(body.get("message", "")))
            return ContactExists(error, found.group(1) if found else None)
        return error

    # ---- contacts --------------------------------------------------------------------------

    def find_contact(self, email: str, properties: Iterable[str]) -> dict[str, Any] | None:
        """The contact with this e-mail, or None. [contacts]: GET by ``idProperty=email``;
        unknown names in ``properties`` are ignored by HubSpot."""
        params = {"idProperty": "email", "properties": ",".join(properties)}
        return self._read(contact_path(email), params)

    def get_contact(self, contact_id: str, properties: Iterable[str]) -> dict[str, Any] | None:
        return self._read(f"{CONTACTS}/{quote(contact_id, safe='')}", {"properties": ",".join(properties)})

    def _read(self, path: str, params: dict[str, str]) -> dict[str, Any] | None:
        response = self.request("GET", path, params=params, ok=(200, 404))
        return None if response.status_code == 404 else json_body(response)

    def create_contact(self, properties: dict[str, str]) -> dict[str, Any]:
        """[contacts]: POST answers 201 with the new contact (200 is accepted too); an e-mail
        that exists raises :class:`ContactExists`."""
        return json_body(self.request("POST", CONTACTS, json={"properties": properties}, ok=(200, 201)))

    def update_contact(self, contact_id: str, properties: dict[str, str]) -> dict[str, Any] | None:
        """[contacts]: PATCH by id; "Provided property values will be overwritten ...
        Properties values can be cleared by passing an empty string". None if the contact is gone
        (deleted or merged away in HubSpot)."""
        response = self.request("PATCH", f"{CONTACTS}/{quote(contact_id, safe='')}",
                                json={"properties": properties}, ok=(200, 404))
        return None if response.status_code == 404 else json_body(response)

    # ---- properties ------------------------------------------------------------------------

    def list_properties(self) -> list[dict[str, Any]]:
        """[properties]: GET /crm/v3/properties/contacts → {"results": [property, ...]}."""
        results = json_body(self.request("GET", CONTACT_PROPERTIES, ok=(200,))).get("results")
        return [p for p in results if isinstance(p, dict)] if isinstance(results, list) else []

    def create_property(self, definition: dict[str, Any]) -> dict[str, Any] | None:
        """[properties]: POST /crm/v3/properties/contacts (scope crm.schemas.contacts.write).
        None when a property of that name already exists (409)."""
        response = self.request("POST", CONTACT_PROPERTIES, json=definition, ok=(200, 201, 409))
        return None if response.status_code == 409 else json_body(response)
