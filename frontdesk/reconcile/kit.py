"""Reading what Kit holds (kit.md §4–5), within its rate limit (Kit has no monthly quota).

**List mode** (a sweep): page through all subscribers with ``status=all`` (cursor pagination,
``per_page=1000``): id, e-mail, state and custom fields for ⌈subscribers/1000⌉ requests. Each
page is matched against the database at once and only customers' subscribers are kept, so a
large Kit audience does not end up in memory. Tags need one request per live subscriber
(``GET /v4/subscribers/{id}/tags``): kit.md documents no "subscribers of a tag" list.

**Probe mode** (``--customer``): the subscriber by id (or by e-mail with ``status=all``), then
its tags: two requests per customer.

Sequences are not read: kit.md documents no way to list a subscriber's sequences, and Kit has
no call to leave one, so a sequence joined stays joined.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from frontdesk.connectors.http import PERMANENT, ProviderError, json_body
from frontdesk.connectors.kit.client import KitClient
from frontdesk.customers.models import Customer, ProviderAccount
from frontdesk.reconcile.caller import Caller
from frontdesk.reconcile.compare import KIT_GONE_STATES, Found, Scope

PER_PAGE = 1000  # kit.md §4: the maximum
MAX_PAGES = 10_000  # 10 million subscribers; a bound, not an expectation
IN_BATCH = 500  # ids / e-mails per IN (…) query


def _batches(items: list[str]) -> Iterable[list[str]]:
    for i in range(0, len(items), IN_BATCH):
        yield items[i:i + IN_BATCH]


class KitReader:
    provider = "kit"
    client_class = KitClient

    def __init__(self, caller: Caller, scope: Scope, *, probe: bool) -> None:
        self.caller = caller
        self.scope = scope
        self.probe = probe
        self.missing_targets: set[tuple[str, int | str]] = set()
        # (id, state, rule-named fields) of customers' subscribers only.
        self.by_id: dict[str, tuple[int, str, dict[str, str]]] = {}
        self.by_email: dict[str, tuple[int, str, dict[str, str]]] = {}

    def load(self) -> None:
        self._check_targets()
        if self.probe:
            return
        params: dict[str, Any] = {"status": "all", "per_page": PER_PAGE}
        seen: set[str] = set()
        for _ in range(MAX_PAGES):
            body = json_body(self.caller.get("/v4/subscribers", params=params))
            self._take([s for s in body.get("subscribers") or [] if isinstance(s, dict)])
            page = body.get("pagination") or {}
            cursor = page.get("end_cursor")
            if not page.get("has_next_page"):
                return
            if not cursor or cursor in seen:
                break
            seen.add(cursor)
            params = {**params, "after": cursor}
        # A partial listing would make every subscriber not yet read look deleted.
        raise ProviderError("kit", PERMANENT, "reconcile_listing_incomplete",
                            "GET /v4/subscribers: the cursor did not advance or the listing never ended")

    def _check_targets(self) -> None:
        """Leave out rule-named tags and fields Kit does not have (the doctor reports them):
        otherwise every customer would show as missing them, and no sync could fix it."""
        if self.scope.targets.get("tags"):
            tags = {t["id"] for t in self._all("/v4/tags", "tags")}
            for tag in sorted(self.scope.targets["tags"] - tags):
                self.missing_targets.add(("tags", tag))
                self.scope.targets["tags"].discard(tag)
        if self.scope.fields:
            keys = {f.get("key") for f in self._all("/v4/custom_fields", "custom_fields")}
            for key in sorted(self.scope.fields - keys):
                self.missing_targets.add(("fields", key))
                self.scope.fields.discard(key)

    def _all(self, path: str, key: str) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"per_page": PER_PAGE}
        items: list[dict[str, Any]] = []
        for _ in range(MAX_PAGES):
            body = json_body(self.caller.get(path, params=params))
            items += [i for i in body.get(key) or [] if isinstance(i, dict)]
            page = body.get("pagination") or {}
            if not page.get("has_next_page") or not page.get("end_cursor"):
                break
            params = {**params, "after": page["end_cursor"]}
        return items

    def _take(self, subscribers: list[dict[str, Any]]) -> None:
        rows = {str(s["id"]): s for s in subscribers if isinstance(s.get("id"), int)}
        linked: set[str] = set()
        for ids in _batches(list(rows)):
            linked.update(ProviderAccount.objects.filter(provider="kit", external_id__in=ids)
                          .values_list("external_id", flat=True))
        emails = {str(s.get("email_address") or "").strip().lower(): s for s in rows.values()}
        known: set[str] = set()
        for batch in _batches([e for e in emails if e]):
            known.update(Customer.objects.filter(email__in=batch).values_list("email", flat=True))
        for ext in linked:
            self.by_id[ext] = self._compact(rows[ext])
        for email in known:
            self.by_email[email] = self._compact(emails[email])

    def _compact(self, subscriber: dict[str, Any]) -> tuple[int, str, dict[str, str]]:
        fields = subscriber.get("fields") or {}
        named = {k: str(v) for k, v in fields.items() if k in self.scope.fields and v not in (None, "")}
        return int(subscriber["id"]), str(subscriber.get("state") or "active"), named

    def find(self, customer: Customer, account: ProviderAccount | None, interesting: bool) -> Found | None:
        linked = account.external_id if account else ""
        email = (account.email if account and account.email else customer.email).lower()
        if not linked and not interesting and self.probe:
            return None
        if self.probe:
            row = self._show(linked) if linked else self._search(email)
        else:
            row = self.by_id.get(linked) if linked else self.by_email.get(email)
        if row is None:
            # Linked but absent from a status=all listing: deleted. Unlinked: not in Kit.
            return Found(exists=False) if interesting else None
        sub_id, state, fields = row
        tags: set[int] | None = set()
        if state not in KIT_GONE_STATES and self.scope.targets.get("tags"):
            tags = self._tags(sub_id)
            if tags is None:  # deleted since it was listed
                return Found(exists=False) if interesting else None
        return Found(True, str(sub_id), {"tags": tags or set()}, fields, state)

    def _show(self, sub_id: str) -> tuple[int, str, dict[str, str]] | None:
        response = self.caller.get(f"/v4/subscribers/{sub_id}", ok=(200, 404))
        sub = json_body(response).get("subscriber") if response.status_code == 200 else None
        return self._compact(sub) if isinstance(sub, dict) and isinstance(sub.get("id"), int) else None

    def _search(self, email: str) -> tuple[int, str, dict[str, str]] | None:
        # 422: Kit calls the address invalid (kit.md §5), so no subscriber can have it.
        response = self.caller.get("/v4/subscribers", params={"email_address": email, "status": "all"}, ok=(200, 422))
        subs = (json_body(response).get("subscribers") or []) if response.status_code == 200 else []
        sub = next((s for s in subs if isinstance(s, dict) and isinstance(s.get("id"), int)), None)
        return self._compact(sub) if sub else None

    def _tags(self, sub_id: int) -> set[int] | None:
        """The rule-named tags the subscriber has; None if the subscriber does not exist."""
        named = self.scope.targets.get("tags", set())
        params: dict[str, Any] = {"per_page": PER_PAGE}
        found: set[int] = set()
        for _ in range(MAX_PAGES):
            response = self.caller.get(f"/v4/subscribers/{sub_id}/tags", params=params, ok=(200, 404))
            if response.status_code == 404:
                return None
            body = json_body(response)
            found |= {int(t["id"]) for t in body.get("tags") or []
                      if isinstance(t, dict) and isinstance(t.get("id"), int) and t["id"] in named}
            page = body.get("pagination") or {}
            if not page.get("has_next_page") or not page.get("end_cursor"):
                break
            params = {**params, "after": page["end_cursor"]}
        return found
