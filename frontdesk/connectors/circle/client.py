"""Circle Admin API v2 (circle.md). Circle has no idempotency keys, so the sync reads before
it writes and treats "already not a member" answers as success (circle.md §7)."""

from __future__ import annotations

from typing import Any

import httpx
from django.conf import settings

from frontdesk.connectors.http import AUTH, PERMANENT, ProviderClient, ProviderError, json_body

BASE = "/api/admin/v2"

# Where each kind of target is added and removed (circle.md §5.3–5.6).
TARGETS: dict[str, dict[str, Any]] = {
    "spaces": {"record": "space", "member_record": "space member"},
    "space_groups": {"record": "space group", "member_record": "space group member"},
    "access_groups": {"record": "access group", "member_record": "access group community member"},
    "member_tags": {"record": "member tag", "member_record": "tagged member"},
}


def missing_record(response: httpx.Response) -> str:
    """The record name of a 404 ('space', 'space member', …): it tells a missing target from
    a person who is simply not a member (circle.md §2)."""
    body = json_body(response)
    details = body.get("error_details")
    text = details.get("message", "") if isinstance(details, dict) else ""
    text = text or str(body.get("message", ""))
    return text.split("Missing record:", 1)[1].strip().lower() if "Missing record:" in text else ""


class CircleClient(ProviderClient):
    provider = "circle"

    @classmethod
    def from_settings(cls) -> CircleClient:
        if not settings.CIRCLE_API_TOKEN:
            raise ProviderError("circle", AUTH, "circle_token_missing", "CIRCLE_API_TOKEN is not set")
        return cls(settings.CIRCLE_API_URL, {"Authorization": f"Token {settings.CIRCLE_API_TOKEN}"})

    def error_message(self, response: httpx.Response) -> str:
        body = json_body(response)
        details = body.get("error_details")
        detail = details.get("message") if isinstance(details, dict) else None
        return str(body.get("message") or body.get("errors") or detail or response.text[:200])

    def classify(self, method: str, path: str, response: httpx.Response) -> ProviderError:
        error = super().classify(method, path, response)
        body = json_body(response)
        if response.status_code == 403 and "errors" in body:
            # A member-limit 403 uses `errors` (circle.md §2): the plan is full, not the token bad.
            return ProviderError("circle", PERMANENT, "circle_member_limit", error.message, status=403)
        if response.status_code == 404:
            record = missing_record(response)
            error.reason = f"circle_missing_{record.replace(' ', '_')}" if record else "circle_not_found"
        elif response.status_code == 422:
            error.reason = "circle_validation_failed"
        return error

    def find_member(self, email: str) -> dict[str, Any] | None:
        response = self.request("GET", f"{BASE}/community_members/search", params={"email": email}, ok=(200, 404))
        if response.status_code == 404:
            if missing_record(response) not in ("community member", ""):
                raise self.classify("GET", "community_members/search", response)
            return None
        return json_body(response)

    def create_member(self, email: str, name: str, *, spaces: list[int], space_groups: list[int],
                      member_tags: list[int]) -> dict[str, Any]:
        # Grant spaces, groups and tags in the create call: fewer requests against the monthly
        # quota (circle.md §4).
        payload: dict[str, Any] = {"email": email, "skip_invitation": False, "space_ids": spaces,
                                   "space_group_ids": space_groups, "member_tag_ids": member_tags}
        if name:
            payload["name"] = name
        body = json_body(self.request("POST", f"{BASE}/community_members", json=payload, ok=(200, 201)))
        return body.get("community_member") or body

    def add(self, kind: str, target: int, email: str) -> None:
        if kind == "spaces":
            self.request("POST", f"{BASE}/space_members", json={"email": email, "space_id": target}, ok=(200, 201))
        elif kind == "space_groups":
            self.request("POST", f"{BASE}/space_group_members", json={"email": email, "space_group_id": target}, ok=(200, 201))
        elif kind == "access_groups":
            self.request("POST", f"{BASE}/access_groups/{target}/community_members", json={"email": email}, ok=(200, 201))
        elif kind == "member_tags":
            self.request("POST", f"{BASE}/tagged_members", json={"member_tag_id": target, "user_email": email}, ok=(200, 201))
        else:
            raise ValueError(kind)

    def remove(self, kind: str, target: int, email: str) -> None:
        if kind == "spaces":
            path, params = f"{BASE}/space_members", {"email": email, "space_id": target}
        elif kind == "space_groups":
            path, params = f"{BASE}/space_group_members", {"email": email, "space_group_id": target}
        elif kind == "access_groups":
            path, params = f"{BASE}/access_groups/{target}/community_members", {"email": email}
        elif kind == "member_tags":
            path, params = f"{BASE}/tagged_members", {"user_email": email, "member_tag_id": target}
        else:
            raise ValueError(kind)
        response = self.request("DELETE", path, params=params, ok=(200, 204, 404))
        if response.status_code == 404:
            record = missing_record(response)
            # Not a member (any more): already done. A missing space/group/tag is a rule error.
            if record not in (TARGETS[kind]["member_record"], "community member", "user"):
                raise self.classify("DELETE", path, response)
