"""Reading what Circle holds, at the lowest request cost the documented API allows.

**List mode** (a sweep): for every target the rules name, page through its member list
(circle.md §5.3–5.6, ``per_page=100``; member tags in one stream, ``tagged_members`` takes a
comma-separated ``member_tag_ids``). Cost: Σ over lists of ⌈members/100⌉, however many
customers there are. Linked members found in no list are then checked one by one
(``GET /community_members/{id}``): that is how a member removed by hand shows up, and only
such members cost a request. The alternative, paging all community members with
``status=all``, costs ⌈all members/100⌉ on every run, free members included; the per-member
check costs one request per member with no access left, which is almost always fewer.

**Probe mode** (``--customer``): paging whole lists for one person would waste the quota, so
look that person up (by id or e-mail) and ask each rule-named space, space group and access
group about them: 1 + spaces + space groups + access groups requests per customer (member
tags come with the member object).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

from frontdesk.connectors.circle.client import BASE, CircleClient, missing_record
from frontdesk.connectors.http import PERMANENT, ProviderError, json_body
from frontdesk.customers.models import Customer, ProviderAccount
from frontdesk.reconcile.caller import Caller
from frontdesk.reconcile.compare import CIRCLE_KINDS, Found, Scope

PER_PAGE = 100  # the most Circle is known to serve (circle.md §3, §6)
MAX_PAGES = 5000  # per list: 500,000 memberships; a bound, not an expectation

# Where each kind's members are listed (circle.md §5.3–5.6) and what a show-probe asks.
LIST_PATHS = {
    "spaces": lambda t: (f"{BASE}/space_members", {"space_id": t, "status": "all"}),
    "space_groups": lambda t: (f"{BASE}/space_group_members", {"space_group_id": t}),
    "access_groups": lambda t: (f"{BASE}/access_groups/{t}/community_members", {}),
}
PROBE_PATHS = {
    "spaces": lambda t, email: (f"{BASE}/space_member", {"space_id": t, "email": email}, "space"),
    "space_groups": lambda t, email: (f"{BASE}/space_group_member", {"space_group_id": t, "email": email}, "space group"),
    "access_groups": lambda t, email: (f"{BASE}/access_groups/{t}/community_member", {"email": email}, "access group"),
}


class CircleReader:
    provider = "circle"
    client_class = CircleClient

    def __init__(self, caller: Caller, scope: Scope, *, probe: bool) -> None:
        self.caller = caller
        self.scope = scope
        self.probe = probe
        self.missing_targets: set[tuple[str, int]] = set()  # named by the rules, 404 in Circle
        # Memberships per member id as a bit set over `slots`: a few bytes per member, so a
        # 50,000-member community fits in a few MB.
        self.slots: dict[tuple[str, int], int] = {}
        self.members: dict[int, int] = {}
        self.emails: dict[str, int] = {}

    # ---- list mode -----------------------------------------------------------------------

    def load(self) -> None:
        """Page through every rule-named target's member list. Reads the first page of each
        list, then checks the quota can pay for the rest before spending anything more: a run
        that would stop half-way cannot compare anything, so it should not start."""
        if self.probe:
            return
        lists = [(kind, target, *LIST_PATHS[kind](target))
                 for kind in ("spaces", "space_groups", "access_groups")
                 for target in sorted(self.scope.targets.get(kind, ()))]
        tags = sorted(self.scope.targets.get("member_tags", ()))
        if tags:
            lists.append(("member_tags", 0, f"{BASE}/tagged_members",
                          {"member_tag_ids": ",".join(str(t) for t in tags)}))
        firsts: list[tuple[str, int, str, dict[str, Any], dict[str, Any]]] = []
        for kind, target, path, params in lists:
            body = self._page(kind, target, path, params, 1)
            if body is not None:
                firsts.append((kind, target, path, params, body))
        still = sum(self._pages_left(body) for *_, body in firsts)
        if still:
            self.caller.budget.check(still)  # raises QuotaReserveReached
        for kind, target, path, params, body in firsts:
            for records in self._rest(kind, target, path, params, body):
                self._take(kind, target, records)

    def _page(self, kind: str, target: int, path: str, params: dict[str, Any], page: int) -> dict[str, Any] | None:
        response = self.caller.get(path, params={**params, "page": page, "per_page": PER_PAGE}, ok=(200, 404))
        if response.status_code == 404:
            # The rule names a target Circle does not have (the doctor reports it): leave it
            # out of the comparison rather than call everyone "missing" it.
            self._unreadable(kind, target, missing_record(response))
            return None
        return json_body(response)

    def _pages_left(self, body: dict[str, Any]) -> int:
        if not body.get("has_next_page"):
            return 0
        count, per_page = body.get("count"), body.get("per_page") or PER_PAGE
        if not isinstance(count, int) or not isinstance(per_page, int) or per_page < 1:
            return 1  # unknown size: the per-request check still guards the quota
        return max(1, math.ceil(count / per_page) - 1)

    def _rest(self, kind: str, target: int, path: str, params: dict[str, Any],
              first: dict[str, Any]) -> Iterator[list[dict[str, Any]]]:
        body: dict[str, Any] | None = first
        # Bounded by the size Circle announced, with slack for members joining while we page,
        # and by MAX_PAGES. Stopping early would compare a partial list and "find" missing
        # access everywhere, so running past the bound fails the run instead.
        expected = self._pages_left(first) + 1
        limit = min(MAX_PAGES, expected + max(3, expected // 10))
        page = 1
        while body is not None:
            records = body.get("records") or []
            yield [r for r in records if isinstance(r, dict)]
            if not body.get("has_next_page") or not records:
                return
            if page >= limit:
                raise ProviderError("circle", PERMANENT, "reconcile_listing_incomplete",
                                    f"GET {path}: still more after {page} pages (about {expected} announced)")
            page += 1
            body = self._page(kind, target, path, params, page)

    def _take(self, kind: str, target: int, records: list[dict[str, Any]]) -> None:
        for record in records:
            member_id = record.get("community_member_id")
            if not isinstance(member_id, int):
                continue  # e.g. a tagged lead (circle.md §5.5: lead_id), not a member
            this_target = int(record.get("member_tag_id") or 0) if kind == "member_tags" else target
            if this_target not in self.scope.targets.get(kind, ()):
                continue
            bit = self.slots.setdefault((kind, this_target), len(self.slots))
            self.members[member_id] = self.members.get(member_id, 0) | (1 << bit)
            nested = record.get("community_member")
            email = record.get("user_email") or (nested.get("email") if isinstance(nested, dict) else None)
            if isinstance(email, str) and email:
                self.emails.setdefault(email.strip().lower(), member_id)

    def _memberships(self, member_id: int) -> dict[str, set[int]]:
        bits = self.members.get(member_id, 0)
        held: dict[str, set[int]] = {k: set() for k in CIRCLE_KINDS}
        for (kind, target), bit in self.slots.items():
            if bits >> bit & 1:
                held[kind].add(target)
        return held

    # ---- per customer --------------------------------------------------------------------

    def find(self, customer: Customer, account: ProviderAccount | None, interesting: bool) -> Found | None:
        """What Circle holds for this customer; None when there is nothing to compare (not
        linked, not in Circle's lists, and nothing desired or applied)."""
        linked = account.external_id if account and account.external_id.isdigit() else ""
        email = (account.email if account and account.email else customer.email).lower()
        if self.probe:
            if not linked and not interesting:
                return None
            member = self._show(int(linked)) if linked else self._search(email)
            return self._probe_memberships(member) if member else Found(exists=False)
        member_id = int(linked) if linked else self.emails.get(email)
        if member_id is not None and member_id in self.members:
            return Found(True, str(member_id), self._memberships(member_id))
        if not interesting:
            return None  # no rule-named access in any list and none wanted: nothing to say
        # In no list: gone, or present without any rule-named access. One request tells.
        member = self._show(int(linked)) if linked else self._search(email)
        if member is None:
            return Found(exists=False)
        member_id = int(member["id"])
        held = self._memberships(member_id)
        held["member_tags"] |= self._tags_of(member)
        return Found(True, str(member_id), held)

    def _show(self, member_id: int) -> dict[str, Any] | None:
        response = self.caller.get(f"{BASE}/community_members/{member_id}", ok=(200, 404))
        return json_body(response) if response.status_code == 200 else None

    def _search(self, email: str) -> dict[str, Any] | None:
        response = self.caller.get(f"{BASE}/community_members/search", params={"email": email}, ok=(200, 404))
        body = json_body(response) if response.status_code == 200 else None
        return body if body and isinstance(body.get("id"), int) else None

    def _tags_of(self, member: dict[str, Any]) -> set[int]:
        named = self.scope.targets.get("member_tags", set())
        return {int(t["id"]) for t in member.get("member_tags") or []
                if isinstance(t, dict) and isinstance(t.get("id"), int) and t["id"] in named}

    def _probe_memberships(self, member: dict[str, Any]) -> Found:
        email = str(member.get("email") or "")
        held: dict[str, set[int]] = {k: set() for k in CIRCLE_KINDS}
        held["member_tags"] = self._tags_of(member)
        for kind, probe in PROBE_PATHS.items():
            for target in sorted(self.scope.targets.get(kind, ())):
                path, params, target_record = probe(target, email)
                response = self.caller.get(path, params=params, ok=(200, 404))
                if response.status_code == 200:
                    held[kind].add(target)
                elif missing_record(response) == target_record:
                    self._unreadable(kind, target, target_record)
        return Found(True, str(member["id"]), held)

    def _unreadable(self, kind: str, target: int, record: str) -> None:
        if kind == "member_tags":
            return
        self.missing_targets.add((kind, target))
        self.scope.targets[kind].discard(target)

