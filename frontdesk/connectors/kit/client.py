"""Kit API v4 (kit.md). Upsert, tag and sequence adds answer 201 the first time and 200 on a
repeat (kit.md §5.1), so every write here is safe to retry."""

from __future__ import annotations

from typing import Any

import httpx
from django.conf import settings

from frontdesk.connectors.http import AUTH, ProviderClient, ProviderError, json_body


class KitClient(ProviderClient):
    provider = "kit"

    @classmethod
    def from_settings(cls) -> KitClient:
        if not settings.KIT_API_KEY:
            raise ProviderError("kit", AUTH, "kit_api_key_missing", "KIT_API_KEY is not set")
        return cls(settings.KIT_API_URL, {"X-Kit-Api-Key": settings.KIT_API_KEY})

    def error_message(self, response: httpx.Response) -> str:
        errors = json_body(response).get("errors")
        if isinstance(errors, list) and errors:
            return "; ".join(str(e) for e in errors)
        return response.text[:200]  # the 429 body is plain text 'Retry later' (kit.md §2)

    def classify(self, method: str, path: str, response: httpx.Response) -> ProviderError:
        error = super().classify(method, path, response)
        if response.status_code == 422:
            error.reason = "kit_invalid_email" if "email" in error.message.lower() else "kit_validation_failed"
        elif response.status_code == 404:
            error.reason = "kit_target_missing"
        return error

    def upsert_subscriber(self, email: str, first_name: str, fields: dict[str, str]) -> dict[str, Any]:
        payload: dict[str, Any] = {"email_address": email, "fields": fields}
        if first_name:
            payload["first_name"] = first_name
        body = json_body(self.request("POST", "/v4/subscribers", json=payload, ok=(200, 201, 202)))
        return body.get("subscriber") or {}

    def find_subscriber(self, email: str) -> dict[str, Any] | None:
        response = self.request("GET", "/v4/subscribers", params={"email_address": email, "status": "all"}, ok=(200,))
        found = json_body(response).get("subscribers") or []
        return found[0] if found else None

    def update_subscriber(self, subscriber_id: str, *, email: str | None = None,
                          fields: dict[str, str] | None = None) -> dict[str, Any]:
        payload: dict[str, Any] = {}
        if email:
            payload["email_address"] = email
        if fields is not None:
            payload["fields"] = fields
        return json_body(self.request("PUT", f"/v4/subscribers/{subscriber_id}", json=payload, ok=(200,))).get("subscriber") or {}

    def tag(self, tag_id: int, email: str) -> None:
        self.request("POST", f"/v4/tags/{tag_id}/subscribers", json={"email_address": email}, ok=(200, 201))

    def untag(self, tag_id: int, subscriber_id: str) -> None:
        # Once the tag is known to exist, a 404 means the subscriber no longer has it (kit.md §5.1).
        self.request("DELETE", f"/v4/tags/{tag_id}/subscribers/{subscriber_id}", ok=(200, 204, 404))

    def add_to_sequence(self, sequence_id: int, email: str) -> None:
        self.request("POST", f"/v4/sequences/{sequence_id}/subscribers", json={"email_address": email}, ok=(200, 201))
