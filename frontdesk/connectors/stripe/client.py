"""The Stripe API reads frontdesk makes (stripe.md §8)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
from django.conf import settings

from frontdesk.connectors.http import AUTH, ProviderClient, ProviderError, json_body

API_VERSION = "2026-10-28.endive"  # what stripe-python 16.1.0 pins (stripe.md, header)


class StripeClient(ProviderClient):
    provider = "stripe"

    @classmethod
    def from_settings(cls) -> StripeClient:
        if not settings.STRIPE_API_KEY:
            raise ProviderError("stripe", AUTH, "stripe_api_key_missing",
                                "STRIPE_API_KEY is not set; it is needed to read Checkout line items")
        return cls(settings.STRIPE_API_URL, {
            "Authorization": f"Bearer {settings.STRIPE_API_KEY}", "Stripe-Version": API_VERSION})

    def error_message(self, response: httpx.Response) -> str:
        error = json_body(response).get("error") or {}
        return str(error.get("message") or response.text[:200])

    def list_all(self, path: str, params: dict[str, Any] | None = None) -> Iterator[dict[str, Any]]:
        """Follow Stripe's cursor pagination (starting_after = last id while has_more)."""
        query = {"limit": 100, **(params or {})}
        while True:
            page = json_body(self.request("GET", path, params=query, ok=(200,)))
            data = page.get("data") or []
            yield from data
            if not page.get("has_more") or not data:
                return
            query["starting_after"] = data[-1]["id"]

    def checkout_line_items(self, session_id: str) -> list[dict[str, Any]]:
        return list(self.list_all(f"/v1/checkout/sessions/{session_id}/line_items"))
