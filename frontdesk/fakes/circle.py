"""A fake of the Circle Admin API v2, built from shared/providers/circle.md.

Section numbers in comments (§5.4 …) refer to that document. Where it says "not documented",
the behaviour is an option with the default the document suggests; README.md lists them.
"""

from __future__ import annotations

import itertools
import re
import time
from dataclasses import dataclass, field
from typing import Any

from .base import (
    FakeServer,
    Request,
    Response,
    RouteSpec,
    jsonable,
    email_is_valid,
    iso_now,
    json_response,
)

PREFIX = "/api/admin/v2"
COMMUNITY_ID = 1

# circle.md §1 (documented: spec).
INVALID_TOKEN = {"success": False, "message": "The API token is invalid.", "error_details": {}}
PLAN_GATE = {
    "success": False,
    "message": "The community is not eligible for admin API v2 access.",
    "error_details": {},
}
# circle.md §2: some 403s on member create use `errors` instead of `message`.
MEMBER_LIMITS = {
    "plan": "Your community has reached the maximum limit of members supported by your plan.",
    "daily": "Daily member limit exceeded.",
}
# circle.md §5.1.
PASSWORD_INVALID = (
    "Validation failed: Password Please make sure your password includes at least 6 characters, "
    "1 uppercase letter, 1 number, and 1 symbol (!, $, @, *, etc)."
)
# Not documented (circle.md §6): the duplicate-create 422 message and the quota response.
DUPLICATE_EMAIL = "Validation failed: Email has already been taken"
QUOTA_EXCEEDED = "Monthly Admin API request quota exceeded."

# circle.md §3: default page sizes (documented examples) and the cap (§6, inferred: 100).
MEMBERS_PER_PAGE = 10
MEMBERSHIPS_PER_PAGE = 60
MAX_PER_PAGE = 100


@dataclass
class Link:
    """A membership row (space member, tagging, …): Circle gives each its own id."""

    id: int
    created_at: str


@dataclass
class Member:
    id: int
    email: str
    name: str
    active: bool
    created_at: str
    updated_at: str
    accepted_invitation: str  # circle.md §5.2: '' while only invited
    headline: str = ""
    is_flagged: bool = False
    skip_invitation: bool = False
    member_since: str | None = None
    preferences: dict[str, Any] = field(default_factory=dict)
    profile_fields: dict[str, Any] = field(default_factory=dict)
    spaces: dict[int, Link] = field(default_factory=dict)
    space_groups: dict[int, Link] = field(default_factory=dict)
    access_groups: dict[int, Link] = field(default_factory=dict)
    tags: dict[int, Link] = field(default_factory=dict)

    @property
    def user_id(self) -> int:
        return 500_000 + self.id

    @property
    def public_uid(self) -> str:
        return f"{self.id:08x}"


class FakeCircle(FakeServer):
    name = "circle"
    CONFIG_KEYS = (
        "rate_limit", "duplicate_create", "repeat_add", "monthly_quota", "quota_status",
        "quota_used", "plan_gate", "member_limit", "rate_limit_retry_after",
    )
    CHOICES = {
        "duplicate_create": ("422", "201"),
        "repeat_add": ("ok", "422"),
        "member_limit": (None, "plan", "daily"),
    }

    def __init__(
        self,
        port: int = 0,
        token: str = "circle-test-token",
        rate_limit: tuple[int, float] | None = (2000, 300.0),
        duplicate_create: str = "422",
        repeat_add: str = "ok",
        monthly_quota: int | None = None,
        quota_status: int = 429,
        plan_gate: bool = False,
        *,
        member_limit: str | None = None,
        rate_limit_retry_after: int | None = None,
        seed: dict[str, Any] | None = None,
    ) -> None:
        self.token = token
        super().__init__(
            port, rate_limit=rate_limit, seed=seed, duplicate_create=duplicate_create,
            repeat_add=repeat_add, monthly_quota=monthly_quota, quota_status=quota_status,
            quota_used=0, plan_gate=plan_gate, member_limit=member_limit,
            rate_limit_retry_after=rate_limit_retry_after,
        )

    # ---- state -----------------------------------------------------------------------------

    def reset_state(self) -> None:
        self.spaces: dict[int, dict[str, Any]] = {}
        self.space_groups: dict[int, dict[str, Any]] = {}
        self.access_groups: dict[int, dict[str, Any]] = {}
        self.member_tags: dict[int, dict[str, Any]] = {}
        self.members: dict[int, Member] = {}
        self.removed_members: list[dict[str, Any]] = []
        self.quota_month = time.strftime("%Y-%m")
        self._member_ids = itertools.count(1001)
        self._link_ids = itertools.count(70001)

    def add_space(self, id: int, name: str) -> dict[str, Any]:
        with self._lock:
            self.spaces[int(id)] = {"id": int(id), "name": name, "slug": _slug(name)}
            return self.spaces[int(id)]

    def add_space_group(self, id: int, name: str, space_ids: Any = ()) -> dict[str, Any]:
        with self._lock:
            ids = [int(s) for s in space_ids]
            for sid in ids:
                self._require(self.spaces, sid, "space")
            group = {"id": int(id), "name": name, "slug": _slug(name), "space_ids": ids}
            self.space_groups[int(id)] = group
            return group

    def add_access_group(self, id: int, name: str) -> dict[str, Any]:
        with self._lock:
            group = {"id": int(id), "name": name, "description": "", "archived_at": None,
                     "created_at": iso_now(), "updated_at": iso_now()}
            self.access_groups[int(id)] = group
            return group

    def add_member_tag(self, id: int, name: str) -> dict[str, Any]:
        with self._lock:
            tag = {"id": int(id), "name": name, "emoji": None,
                   "created_at": iso_now(), "updated_at": iso_now()}
            self.member_tags[int(id)] = tag
            return tag

    def add_member(
        self,
        email: str,
        name: str = "",
        active: bool = True,
        space_ids: Any = (),
        space_group_ids: Any = (),
        member_tag_ids: Any = (),
        access_group_ids: Any = (),
        id: int | None = None,
    ) -> dict[str, Any]:
        """Seed a member; ``active=False`` is an invited member who has not accepted yet."""
        with self._lock:
            for sid in space_ids:
                self._require(self.spaces, sid, "space")
            for gid in space_group_ids:
                self._require(self.space_groups, gid, "space group")
            for tid in member_tag_ids:
                self._require(self.member_tags, tid, "member tag")
            for aid in access_group_ids:
                self._require(self.access_groups, aid, "access group")
            m = self._new_member(email, name, active, member_id=id)
            self._apply_links(m, space_ids, space_group_ids, member_tag_ids)
            for aid in access_group_ids:
                m.access_groups[int(aid)] = self._link()
            return self._inspect(m)

    def member(self, email: str) -> dict[str, Any] | None:
        """The member with this e-mail (any case) with sets of its memberships, or None."""
        with self._lock:
            m = self._find(email)
            return self._inspect(m) if m else None

    def seed(self, data: dict[str, Any]) -> dict[str, Any]:
        for s in data.get("spaces", []):
            self.add_space(s["id"], s["name"])
        for g in data.get("space_groups", []):
            self.add_space_group(g["id"], g["name"], g.get("space_ids", ()))
        for a in data.get("access_groups", []):
            self.add_access_group(a["id"], a["name"])
        for t in data.get("member_tags", []):
            self.add_member_tag(t["id"], t["name"])
        members = [self.add_member(**m) for m in data.get("members", [])]
        return {"members": members}

    def state(self) -> dict[str, Any]:
        return {
            "spaces": list(self.spaces.values()),
            "space_groups": list(self.space_groups.values()),
            "access_groups": list(self.access_groups.values()),
            "member_tags": list(self.member_tags.values()),
            "members": [self._inspect(m) for m in self.members.values()],
            "removed_members": self.removed_members,
            "quota": {"month": self.quota_month, "used": self.quota_used,
                      "limit": self.monthly_quota},
            "config": self.config(),
        }

    def _require(self, table: dict[int, Any], id: Any, record: str) -> None:
        if _int(id) not in table:
            raise ValueError(f"unknown {record} {id!r}: seed it first")

    def _new_member(self, email: str, name: str, active: bool,
                    member_id: int | None = None) -> Member:
        now = iso_now()
        m = Member(
            id=int(member_id) if member_id is not None else next(self._member_ids),
            email=email, name=name or "", active=active, created_at=now, updated_at=now,
            accepted_invitation=now if active else "",
        )
        self.members[m.id] = m
        return m

    def _link(self) -> Link:
        return Link(next(self._link_ids), iso_now())

    def _find(self, email: Any) -> Member | None:
        # circle.md §6: e-mail case is not documented; compare case-insensitively.
        if not isinstance(email, str):
            return None
        wanted = email.strip().lower()
        return next((m for m in self.members.values() if m.email.lower() == wanted), None)

    def _join_group(self, m: Member, group_id: int) -> bool:
        """Add to a space group and its spaces; returns whether anything changed."""
        changed = False
        if group_id not in m.space_groups:
            m.space_groups[group_id] = self._link()
            changed = True
        for sid in self.space_groups[group_id]["space_ids"]:
            if sid in self.spaces and sid not in m.spaces:
                m.spaces[sid] = self._link()
                changed = True
        return changed

    def _apply_links(self, m: Member, space_ids: Any, group_ids: Any, tag_ids: Any) -> bool:
        changed = False
        for gid in group_ids:
            changed |= self._join_group(m, int(gid))
        for sid in space_ids:
            if int(sid) not in m.spaces:
                m.spaces[int(sid)] = self._link()
                changed = True
        for tid in tag_ids:
            if int(tid) not in m.tags:
                m.tags[int(tid)] = self._link()
                changed = True
        return changed

    def _inspect(self, m: Member) -> dict[str, Any]:
        return {
            "id": m.id, "email": m.email, "name": m.name, "active": m.active,
            "accepted_invitation": m.accepted_invitation, "headline": m.headline,
            "is_flagged": m.is_flagged, "skip_invitation": m.skip_invitation,
            "profile_fields": dict(m.profile_fields), "created_at": m.created_at,
            "space_ids": set(m.spaces), "space_group_ids": set(m.space_groups),
            "access_group_ids": set(m.access_groups), "member_tag_ids": set(m.tags),
        }

    # ---- provider hooks --------------------------------------------------------------------

    def error_response(self, status: int, message: str | None = None) -> Response:
        if status == 401:
            return json_response(401, INVALID_TOKEN)
        if status == 403 and message is None:
            return json_response(403, PLAN_GATE)
        default = {404: "Not found.", 429: "Too many requests. Please try again later."}.get(
            status, "Internal server error." if status >= 500 else "Bad request."
        )
        return json_response(status, {"success": False, "message": message or default,
                                       "error_details": {}})

    def authenticate(self, req: Request) -> Response | None:
        # circle.md §1: the spec says `Token`, many clients send `Bearer`; accept both.
        if req.auth_scheme in ("Token", "Bearer") and req.credential == self.token:
            return None
        return json_response(401, INVALID_TOKEN)

    def precheck(self, req: Request) -> Response | None:
        if self.plan_gate:  # circle.md §1: documented on every operation
            return json_response(403, PLAN_GATE)
        month = time.strftime("%Y-%m")
        if month != self.quota_month:  # circle.md §4: the quota is per calendar month
            self.quota_month, self.quota_used = month, 0
        if self.monthly_quota is not None and self.quota_used >= self.monthly_quota:
            # circle.md §4/§6: response not documented; status configurable.
            return self.error_response(self.quota_status, QUOTA_EXCEEDED)
        self.quota_used += 1
        return None

    def rate_limit_response(self, req: Request) -> Response:
        # circle.md §4: 2000 / 5 min per IP; no headers documented, Retry-After optional.
        resp = self.error_response(429)
        if self.rate_limit_retry_after is not None:
            resp.headers["Retry-After"] = str(self.rate_limit_retry_after)
        return resp

    def control_routes(self) -> list[RouteSpec]:
        return [("GET", r"/_fake/member$", self._ctl_member)]

    def _ctl_member(self, req: Request) -> Response:
        found = self.member(req.q("email") or "")
        if found is None:
            return json_response(404, {"error": "no such member"})
        return json_response(200, jsonable(found))

    def routes(self) -> list[RouteSpec]:
        p = PREFIX
        return [
            # §5.1 community members
            ("POST", rf"{p}/community_members$", self.create_member),
            ("GET", rf"{p}/community_members$", self.list_members),
            ("GET", rf"{p}/community_members/search$", self.search_member),
            ("GET", rf"{p}/community_members/(?P<id>\d+)$", self.show_member),
            ("PUT", rf"{p}/community_members/(?P<id>\d+)$", self.update_member),
            ("DELETE", rf"{p}/community_members/(?P<id>\d+)$", self.deactivate_member),
            ("PUT", rf"{p}/community_members/(?P<id>\d+)/delete_member$", self.delete_member),
            ("PUT", rf"{p}/community_members/(?P<id>\d+)/ban_member$", self.ban_member),
            ("GET", rf"{p}/community_members/(?P<id>\d+)/access_groups$",
             self.member_access_groups),
            ("GET", rf"{p}/community_member_spaces$", self.member_spaces),
            # §5.3 spaces
            ("POST", rf"{p}/space_members$", self.add_space_member),
            ("DELETE", rf"{p}/space_members$", self.remove_space_member),
            ("GET", rf"{p}/space_members$", self.list_space_members),
            ("GET", rf"{p}/space_member$", self.show_space_member),
            ("GET", rf"{p}/spaces$", self.list_spaces),
            # §5.4 space groups
            ("POST", rf"{p}/space_group_members$", self.add_space_group_member),
            ("DELETE", rf"{p}/space_group_members$", self.remove_space_group_member),
            ("GET", rf"{p}/space_group_members$", self.list_space_group_members),
            ("GET", rf"{p}/space_group_member$", self.show_space_group_member),
            ("GET", rf"{p}/space_groups$", self.list_space_groups),
            # §5.5 member tags
            ("POST", rf"{p}/tagged_members$", self.tag_member),
            ("DELETE", rf"{p}/tagged_members$", self.untag_member),
            ("GET", rf"{p}/tagged_members$", self.list_tagged_members),
            ("GET", rf"{p}/tagged_members/(?P<id>\d+)$", self.show_tagged_member),
            ("GET", rf"{p}/member_tags$", self.list_member_tags),
            ("POST", rf"{p}/member_tags$", self.create_member_tag),
            ("GET", rf"{p}/member_tags/(?P<id>\d+)$", self.show_member_tag),
            ("PUT", rf"{p}/member_tags/(?P<id>\d+)$", self.update_member_tag),
            ("DELETE", rf"{p}/member_tags/(?P<id>\d+)$", self.delete_member_tag),
            # §5.6 access groups
            ("POST", rf"{p}/access_groups/(?P<id>\d+)/community_members$",
             self.add_access_group_member),
            ("DELETE", rf"{p}/access_groups/(?P<id>\d+)/community_members$",
             self.remove_access_group_member),
            ("GET", rf"{p}/access_groups/(?P<id>\d+)/community_members$",
             self.list_access_group_members),
            ("GET", rf"{p}/access_groups/(?P<id>\d+)/community_member$",
             self.show_access_group_member),
            ("GET", rf"{p}/access_groups$", self.list_access_groups),
            ("POST", rf"{p}/access_groups$", self.create_access_group),
            ("PUT", rf"{p}/access_groups/(?P<id>\d+)$", self.update_access_group),
            ("DELETE", rf"{p}/access_groups/(?P<id>\d+)$", self.archive_access_group),
            ("PATCH", rf"{p}/access_groups/(?P<id>\d+)/unarchive$", self.unarchive_access_group),
        ]

    # ---- response helpers ------------------------------------------------------------------

    def _missing(self, record: str) -> Response:
        # circle.md §2: the record name tells "target missing" from "not a member".
        return json_response(404, {
            "success": False,
            "message": "Oops! Missing record. Please try again later.",
            "error_details": {"message": f"Missing record: {record}"},
        })

    def _missing_space_group(self) -> Response:
        # circle.md §2: the space-group 404 carries the record name in `message`.
        return json_response(404, {"success": False, "message": "Missing record: space group",
                                   "error_details": {}})

    def _invalid(self, message: str) -> Response:
        return json_response(422, {"success": False, "message": message, "error_details": {}})

    def _page(self, req: Request, records: list[Any], default_per_page: int) -> Response:
        # circle.md §3: envelope {page, per_page, has_next_page, count, page_count, records}.
        # The documented example has count 2 and page_count 2 at per_page 10, so `count` is
        # the total and `page_count` the number of records on this page.
        page = max(_int(req.q("page")) or 1, 1)
        per_page = min(max(_int(req.q("per_page")) or default_per_page, 1), MAX_PER_PAGE)
        start = (page - 1) * per_page
        chunk = records[start:start + per_page]
        return json_response(200, {
            "page": page, "per_page": per_page,
            "has_next_page": start + per_page < len(records),
            "count": len(records), "page_count": len(chunk), "records": chunk,
        })

    def member_json(self, m: Member, detailed: bool = False) -> dict[str, Any]:
        """The member object of circle.md §5.2."""
        first, _, last = m.name.partition(" ")
        data: dict[str, Any] = {
            "id": m.id, "first_name": first or None, "last_name": last or None,
            "name": m.name, "email": m.email, "headline": m.headline,
            "created_at": m.created_at, "updated_at": m.updated_at,
            "community_id": COMMUNITY_ID, "last_seen_at": None,
            "profile_confirmed_at": m.accepted_invitation or None,
            "member_since": m.member_since or m.created_at,
            "member_since_overridden": m.member_since is not None,
            "profile_url": f"https://community.circle.test/u/{m.public_uid}",
            "public_uid": m.public_uid,
            "profile_fields": [{"key": k, "value": v} for k, v in m.profile_fields.items()],
            "flattened_profile_fields": dict(m.profile_fields),
            "avatar_url": None, "user_id": m.user_id,
            "accepted_invitation": m.accepted_invitation, "active": m.active,
            "sso_provider_user_id": None,
            "member_tags": [{"name": self.member_tags[t]["name"], "id": t}
                            for t in m.tags if t in self.member_tags],
            "posts_count": 0, "comments_count": 0,
        }
        if detailed:  # §5.2: list/show also carry these
            data["gamification_stats"] = {}
            data["activity_score"] = {}
        return data

    # ---- §5.1 community members ------------------------------------------------------------

    def create_member(self, req: Request) -> Response:
        if self.member_limit:  # §2: these 403s use `errors`, not `message`
            return json_response(403, {"success": False,
                                       "errors": MEMBER_LIMITS[self.member_limit]})
        email = req.param("email")
        if not email_is_valid(email):
            return self._invalid("Invalid email address.")
        password = req.param("password")
        if password is not None and not _strong_password(password):
            return self._invalid(PASSWORD_INVALID)
        existing = self._find(email)
        if existing is not None:
            # §6: not documented. "422" (default) or "201" returning the member unchanged.
            if self.duplicate_create == "201":
                return json_response(201, {
                    "message": self._invite_message([], []),
                    "community_member": self.member_json(existing),
                })
            return self._invalid(DUPLICATE_EMAIL)
        space_ids, group_ids, tag_ids = (
            _ids(req, "space_ids"), _ids(req, "space_group_ids"), _ids(req, "member_tag_ids"),
        )
        for sid in space_ids:
            if sid not in self.spaces:
                return self._missing("space")
        for gid in group_ids:
            if gid not in self.space_groups:
                return self._missing_space_group()
        for tid in tag_ids:
            if tid not in self.member_tags:
                return self._missing("member tag")
        # §5.2: a fresh invite is `active: false`, `accepted_invitation: ''`.
        m = self._new_member(email.strip(), req.param("name") or "", active=False)
        m.headline = req.param("headline") or ""
        m.is_flagged = bool(req.param("is_flagged"))
        m.skip_invitation = _truthy(req.param("skip_invitation"))
        m.profile_fields = dict(req.param("community_member_profile_fields") or {})
        self._apply_links(m, space_ids, group_ids, tag_ids)
        message = self._invite_message(
            [self.space_groups[g]["name"] for g in group_ids],
            [self.spaces[s]["name"] for s in space_ids],
        )
        return json_response(201, {"message": message, "community_member": self.member_json(m)},
                             changed=True)

    def _invite_message(self, group_names: list[str], space_names: list[str]) -> str:
        # §5.1 example: "This user has been invited to the community and has been added to
        # following space groups: Name 1 spaces: molestiae."
        if not group_names and not space_names:
            return "This user has been invited to the community."
        return (
            "This user has been invited to the community and has been added to following "
            f"space groups: {', '.join(group_names)} spaces: {', '.join(space_names)}."
        )

    def list_members(self, req: Request) -> Response:
        status = req.q("status") or "active"  # §5.1: default active (profile confirmed)
        members = list(self.members.values())
        if status == "active":
            members = [m for m in members if m.active]
        elif status == "inactive":
            members = [m for m in members if not m.active]
        tag_ids = set(_ids(req, "member_tag_ids"))
        if tag_ids:  # §5.1: comma-separated, OR
            members = [m for m in members if tag_ids & set(m.tags)]
        return self._page(req, [self.member_json(m, True) for m in members], MEMBERS_PER_PAGE)

    def search_member(self, req: Request) -> Response:
        # §5.1: invited (unconfirmed) members are returned too; 404 when none.
        m = self._find(req.q("email"))
        if m is None:
            return self._missing("community member")
        return json_response(200, self.member_json(m, True))

    def _member_by_id(self, req: Request) -> Member | None:
        return self.members.get(int(req.args["id"]))

    def show_member(self, req: Request) -> Response:
        m = self._member_by_id(req)
        return json_response(200, self.member_json(m, True)) if m else self._missing(
            "community member")

    def update_member(self, req: Request) -> Response:
        m = self._member_by_id(req)
        if m is None:
            return self._missing("community member")
        body = req.body if isinstance(req.body, dict) else {}
        if "name" in body and not str(body["name"] or "").strip():
            return self._invalid("Validation failed: Name can't be blank")  # §5.1
        space_ids, group_ids, tag_ids = (
            _ids(req, "space_ids"), _ids(req, "space_group_ids"), _ids(req, "member_tag_ids"),
        )
        if any(s not in self.spaces for s in space_ids):
            return self._missing("space")
        if any(g not in self.space_groups for g in group_ids):
            return self._missing_space_group()
        if any(t not in self.member_tags for t in tag_ids):
            return self._missing("member tag")
        before = self._inspect(m), m.preferences.copy(), m.member_since
        for key in ("name", "headline", "is_flagged", "member_since"):
            if key in body:
                setattr(m, key, body[key])
        m.preferences.update(body.get("preferences") or {})
        m.profile_fields.update(body.get("community_member_profile_fields") or {})
        # Not documented whether the id lists replace or add; the fake adds (never removes).
        self._apply_links(m, space_ids, group_ids, tag_ids)
        changed = before != (self._inspect(m), m.preferences, m.member_since)
        if changed:
            m.updated_at = iso_now()
        return json_response(200, self.member_json(m, True), changed=changed)

    def _remove(self, m: Member, how: str) -> None:
        del self.members[m.id]
        self.removed_members.append({**self._inspect(m), "removed_as": how, "at": iso_now()})

    def deactivate_member(self, req: Request) -> Response:
        m = self._member_by_id(req)
        if m is None:
            return self._missing("community member")
        self._remove(m, "deactivated")  # §5.1: "removed from the community"
        return json_response(200, {"message": "The community member has been removed from "
                                              "the community."}, changed=True)

    def delete_member(self, req: Request) -> Response:
        m = self._member_by_id(req)
        if m is None:
            return self._missing("community member")
        self._remove(m, "deleted")
        return json_response(200, {"message": "Member deleted successfully."}, changed=True)

    def ban_member(self, req: Request) -> Response:
        m = self._member_by_id(req)
        if m is None:
            return self._missing("community member")
        self._remove(m, "banned")
        return json_response(200, {"message": "Member banned successfully."}, changed=True)

    def member_access_groups(self, req: Request) -> Response:
        m = self._member_by_id(req)
        if m is None:
            return self._missing("community member")
        records = [self.access_groups[a] for a in m.access_groups if a in self.access_groups]
        return self._page(req, records, MEMBERSHIPS_PER_PAGE)

    def member_spaces(self, req: Request) -> Response:
        m = None
        if req.q("community_member_id"):
            m = self.members.get(_int(req.q("community_member_id")) or -1)
        elif req.q("user_email"):
            m = self._find(req.q("user_email"))
        if m is None:
            return self._missing("user")
        records = [self._space_json(s) for s in m.spaces if s in self.spaces]
        return self._page(req, records, MEMBERSHIPS_PER_PAGE)

    # ---- §5.3 spaces -----------------------------------------------------------------------

    def _space_json(self, sid: int) -> dict[str, Any]:
        group = next((g["id"] for g in self.space_groups.values() if sid in g["space_ids"]), None)
        return {**self.spaces[sid], "space_group_id": group}

    def _space_member_json(self, m: Member, sid: int) -> dict[str, Any]:
        link = m.spaces[sid]
        return {
            "id": link.id, "user_id": m.user_id, "space_id": sid, "community_member_id": m.id,
            "moderator": False, "access_type": "invite",
            "status": "active" if m.active else "inactive", "notification_type": None,
            "created_at": link.created_at, "updated_at": link.created_at,
            "community_member": self.member_json(m),
        }

    def add_space_member(self, req: Request) -> Response:
        sid = _int(req.param("space_id"))
        if sid not in self.spaces:
            return self._missing("space")
        m = self._find(req.param("email"))
        if m is None:
            return self._missing("user")
        if sid in m.spaces:
            # §6: adding twice is not documented: 200 again (default) or 422.
            if self.repeat_add == "422":
                return self._invalid("User not added to space.")
            return json_response(200, {"message": "User added to space"})
        m.spaces[sid] = self._link()
        return json_response(200, {"message": "User added to space"}, changed=True)  # §5.3: 200

    def remove_space_member(self, req: Request) -> Response:
        sid = _int(req.param("space_id"))
        if sid not in self.spaces:
            return self._missing("space")
        m = self._find(req.param("email"))
        if m is None:
            return self._missing("user")
        if sid not in m.spaces:
            return self._missing("space member")
        del m.spaces[sid]
        return json_response(200, {"message": "Member removed from space"}, changed=True)

    def list_space_members(self, req: Request) -> Response:
        sid = _int(req.q("space_id"))
        if sid not in self.spaces:
            return self._missing("space")
        status = req.q("status") or "all"  # §5.3: default all
        members = [m for m in self.members.values() if sid in m.spaces]
        if status in ("active", "inactive"):
            members = [m for m in members if m.active == (status == "active")]
        records = [self._space_member_json(m, sid) for m in members]
        return self._page(req, records, MEMBERSHIPS_PER_PAGE)

    def show_space_member(self, req: Request) -> Response:
        sid = _int(req.q("space_id"))
        if sid not in self.spaces:
            return self._missing("space")
        m = self._find(req.q("email"))
        if m is None:
            return self._missing("user")
        if sid not in m.spaces:
            return self._missing("space member")
        return json_response(200, self._space_member_json(m, sid))

    def list_spaces(self, req: Request) -> Response:
        return self._page(req, [self._space_json(s) for s in self.spaces], MEMBERS_PER_PAGE)

    # ---- §5.4 space groups -----------------------------------------------------------------

    def _space_group_member_json(self, m: Member, gid: int) -> dict[str, Any]:
        link = m.space_groups[gid]
        return {
            "id": link.id, "space_group_id": gid, "community_member_id": m.id,
            "user_id": m.user_id, "status": "active" if m.active else "inactive",
            "created_at": link.created_at, "updated_at": link.created_at,
            "community_member": self.member_json(m),
        }

    def add_space_group_member(self, req: Request) -> Response:
        gid = _int(req.param("space_group_id"))
        if gid not in self.space_groups:
            return self._missing_space_group()
        m = self._find(req.param("email"))
        if m is None:  # §5.4: documented 422 for an unknown e-mail
            return self._invalid("User is not a member of community")
        if gid in m.space_groups:  # §5.4: already a member is also 200
            return json_response(200, {"success": True,
                                       "message": "User is already added to the space group."})
        self._join_group(m, gid)
        return json_response(200, {"success": True,
                                   "message": "User has been added to the space group."},
                             changed=True)

    def remove_space_group_member(self, req: Request) -> Response:
        gid = _int(req.param("space_group_id"))
        if gid not in self.space_groups:
            return self._missing_space_group()
        m = self._find(req.param("email"))
        if m is None:
            return self._missing("user")
        if gid not in m.space_groups:
            # Not documented: the fake uses the §2 pattern with record "space group member".
            return self._missing("space group member")
        del m.space_groups[gid]
        for sid in self.space_groups[gid]["space_ids"]:  # "…and its spaces" (§5.4)
            m.spaces.pop(sid, None)
        return json_response(200, {"success": True,
                                   "message": "User removed from the space group and its spaces"},
                             changed=True)

    def list_space_group_members(self, req: Request) -> Response:
        gid = _int(req.q("space_group_id"))
        if gid not in self.space_groups:
            return self._missing_space_group()
        records = [self._space_group_member_json(m, gid)
                   for m in self.members.values() if gid in m.space_groups]
        return self._page(req, records, MEMBERSHIPS_PER_PAGE)

    def show_space_group_member(self, req: Request) -> Response:
        gid = _int(req.q("space_group_id"))
        if gid not in self.space_groups:
            return self._missing_space_group()
        m = self._find(req.q("email"))
        if m is None:
            return self._missing("user")
        if gid not in m.space_groups:
            return self._missing("space group member")
        return json_response(200, self._space_group_member_json(m, gid))

    def list_space_groups(self, req: Request) -> Response:
        return self._page(req, list(self.space_groups.values()), MEMBERS_PER_PAGE)

    # ---- §5.5 member tags ------------------------------------------------------------------

    def _tagged_json(self, m: Member, tid: int) -> dict[str, Any]:
        link = m.tags[tid]
        return {
            "id": link.id, "member_tag_id": tid, "member_tag_name": self.member_tags[tid]["name"],
            "member_tag_emoji": self.member_tags[tid].get("emoji"), "user_id": m.user_id,
            "user_email": m.email, "lead_id": None, "lead_email": None,
            "community_member_id": m.id, "contact_id": None,
            "created_at": link.created_at, "updated_at": link.created_at,
        }

    def tag_member(self, req: Request) -> Response:
        tid = _int(req.param("member_tag_id"))
        if tid not in self.member_tags:
            return self._missing("member tag")
        m = self._find(req.param("user_email"))
        if m is None:
            return self._missing("user")
        if tid in m.tags:
            # §6: tagging twice is not documented: 201 again (default) or 422.
            if self.repeat_add == "422":
                return self._invalid("Member is already tagged.")
            return json_response(201, {"message": "Person tagged successfully!"})
        m.tags[tid] = self._link()
        return json_response(201, {"message": "Person tagged successfully!"}, changed=True)

    def untag_member(self, req: Request) -> Response:
        tid = _int(req.param("member_tag_id"))
        if tid not in self.member_tags:
            return self._missing("member tag")
        m = self._find(req.param("user_email"))
        if m is None:
            return self._missing("user")
        if tid not in m.tags:
            # Not documented (§7.3 "the untag equivalent"): record name "tagged member".
            return self._missing("tagged member")
        del m.tags[tid]
        return json_response(200, {"message": "Tag has been removed"}, changed=True)

    def list_tagged_members(self, req: Request) -> Response:
        wanted = set(_ids(req, "member_tag_ids"))
        records = [
            self._tagged_json(m, tid)
            for m in self.members.values() for tid in m.tags
            if tid in self.member_tags and (not wanted or tid in wanted)
        ]
        return self._page(req, records, MEMBERSHIPS_PER_PAGE)

    def show_tagged_member(self, req: Request) -> Response:
        link_id = int(req.args["id"])
        for m in self.members.values():
            for tid, link in m.tags.items():
                if link.id == link_id and tid in self.member_tags:
                    return json_response(200, self._tagged_json(m, tid))
        return self._missing("tagged member")

    def list_member_tags(self, req: Request) -> Response:
        return self._page(req, list(self.member_tags.values()), MEMBERS_PER_PAGE)

    def create_member_tag(self, req: Request) -> Response:
        data = _unwrap(req, "member_tag")
        if not str(data.get("name") or "").strip():
            return self._invalid("Validation failed: Name can't be blank")
        tag = self.add_member_tag(max(self.member_tags, default=0) + 1, data["name"])
        return json_response(201, tag, changed=True)

    def show_member_tag(self, req: Request) -> Response:
        tag = self.member_tags.get(int(req.args["id"]))
        return json_response(200, tag) if tag else self._missing("member tag")

    def update_member_tag(self, req: Request) -> Response:
        tag = self.member_tags.get(int(req.args["id"]))
        if tag is None:
            return self._missing("member tag")
        data = _unwrap(req, "member_tag")
        changed = False
        for key in ("name", "emoji"):
            if key in data and data[key] != tag.get(key):
                tag[key], changed = data[key], True
        return json_response(200, tag, changed=changed)

    def delete_member_tag(self, req: Request) -> Response:
        tid = int(req.args["id"])
        if tid not in self.member_tags:
            return self._missing("member tag")
        del self.member_tags[tid]
        for m in self.members.values():
            m.tags.pop(tid, None)
        return json_response(200, {"message": "Member tag deleted."}, changed=True)

    # ---- §5.6 access groups ----------------------------------------------------------------

    def _access_member_json(self, m: Member, aid: int) -> dict[str, Any]:
        link = m.access_groups[aid]
        return {"id": link.id, "access_group_id": aid, "community_member_id": m.id,
                "community_id": COMMUNITY_ID, "created_at": link.created_at,
                "updated_at": link.created_at}

    def _access_group(self, req: Request) -> dict[str, Any] | None:
        return self.access_groups.get(int(req.args["id"]))

    def add_access_group_member(self, req: Request) -> Response:
        group = self._access_group(req)
        if group is None:
            return self._missing("access group")
        m = self._find(req.param("email"))
        if m is None:
            return self._missing("user")
        message = f"Member has been added to '{group['name']}' access group."
        if group["id"] in m.access_groups:
            # §6: adding twice is not documented: 201 again (default) or 422.
            if self.repeat_add == "422":
                return self._invalid("Member is already in the access group.")
            return json_response(201, {"message": message})
        m.access_groups[group["id"]] = self._link()
        return json_response(201, {"message": message}, changed=True)  # §5.6: 201

    def remove_access_group_member(self, req: Request) -> Response:
        group = self._access_group(req)
        if group is None:
            return self._missing("access group")
        m = self._find(req.param("email"))
        if m is None:
            return self._missing("user")
        if group["id"] not in m.access_groups:
            return self._missing("access group community member")  # §5.6
        del m.access_groups[group["id"]]
        return json_response(200, {"message": f"Member removed from '{group['name']}' access "
                                              "group."}, changed=True)

    def list_access_group_members(self, req: Request) -> Response:
        group = self._access_group(req)
        if group is None:
            return self._missing("access group")
        records = [self._access_member_json(m, group["id"])
                   for m in self.members.values() if group["id"] in m.access_groups]
        return self._page(req, records, MEMBERSHIPS_PER_PAGE)

    def show_access_group_member(self, req: Request) -> Response:
        group = self._access_group(req)
        if group is None:
            return self._missing("access group")
        m = self._find(req.q("email"))
        if m is None:
            return self._missing("user")
        if group["id"] not in m.access_groups:
            return self._missing("access group community member")
        return json_response(200, self._access_member_json(m, group["id"]))

    def list_access_groups(self, req: Request) -> Response:
        return self._page(req, list(self.access_groups.values()), MEMBERS_PER_PAGE)

    def create_access_group(self, req: Request) -> Response:
        data = _unwrap(req, "access_group")
        if not str(data.get("name") or "").strip():
            return self._invalid("Validation failed: Name can't be blank")
        group = self.add_access_group(max(self.access_groups, default=0) + 1, data["name"])
        group["description"] = data.get("description") or ""
        return json_response(201, group, changed=True)

    def update_access_group(self, req: Request) -> Response:
        group = self._access_group(req)
        if group is None:
            return self._missing("access group")
        data = _unwrap(req, "access_group")
        changed = False
        for key in ("name", "description"):
            if key in data and data[key] != group.get(key):
                group[key], changed = data[key], True
        return json_response(200, group, changed=changed)

    def archive_access_group(self, req: Request) -> Response:
        group = self._access_group(req)
        if group is None:
            return self._missing("access group")
        changed = group["archived_at"] is None
        group["archived_at"] = group["archived_at"] or iso_now()  # §5.6: DELETE archives
        return json_response(200, group, changed=changed)

    def unarchive_access_group(self, req: Request) -> Response:
        group = self._access_group(req)
        if group is None:
            return self._missing("access group")
        changed = group["archived_at"] is not None
        group["archived_at"] = None
        return json_response(200, group, changed=changed)


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _ids(req: Request, name: str) -> list[int]:
    """An id list from JSON (`[1, 2]`), a comma string (`"1,2"`) or repeated `name[]=` params."""
    raw: Any = req.param(name)
    if raw is None:
        raw = req.body.get(f"{name}[]") if isinstance(req.body, dict) else None
    if raw is None:
        raw = req.query.get(f"{name}[]")
    if raw is None:
        return []
    if isinstance(raw, (int, str)):
        raw = str(raw).split(",")
    ids = [_int(v) for v in raw if str(v).strip()]
    return [i for i in ids if i is not None]


def _unwrap(req: Request, key: str) -> dict[str, Any]:
    """Rails-style bodies come as `{"access_group": {...}}` or flat; accept both."""
    body = req.body if isinstance(req.body, dict) else {}
    inner = body.get(key)
    return inner if isinstance(inner, dict) else body


def _truthy(value: Any) -> bool:
    return value is True or str(value).lower() in ("true", "1")


def _strong_password(password: Any) -> bool:
    # §5.1: at least 6 characters, 1 uppercase letter, 1 number and 1 symbol.
    text = str(password)
    return (len(text) >= 6 and re.search(r"[A-Z]", text) is not None
            and re.search(r"\d", text) is not None
            and re.search(r"[^A-Za-z0-9]", text) is not None)


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


