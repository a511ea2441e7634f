from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from frontdesk.api.models import ApiToken
from frontdesk.audit.models import record
from frontdesk.web.roles import ROLES


class Command(BaseCommand):
    help = "Create, list or revoke tokens for the JSON API (/api/v1/)."

    def add_arguments(self, parser: Any) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="create a token and print it once")
        create.add_argument("--role", required=True, choices=ROLES)
        create.add_argument("--name", required=True, help="what uses it, e.g. 'zapier' or 'ci'")
        create.add_argument("--by", default="cli", help="who is doing this (for the audit log)")
        ls = sub.add_parser("list", help="every token (never the secret)")
        ls.add_argument("--json", action="store_true")
        revoke = sub.add_parser("revoke", help="revoke a token at once")
        revoke.add_argument("token_id", type=int)
        revoke.add_argument("--reason", default="")
        revoke.add_argument("--by", default="cli")

    def handle(self, *args: Any, action: str, **o: Any) -> None:
        getattr(self, action)(**o)

    def create(self, role: str, name: str, by: str, **_: Any) -> None:
        name = name.strip()
        if not name or len(name) > 100:
            raise CommandError("--name must be 1 to 100 characters")
        row, token = ApiToken.issue(name, role, by)
        record(by, "api_token_created", f"api_token:{row.pk}",
               after={"name": row.name, "role": row.role, "prefix": row.prefix})
        self.stdout.write(token)
        self.stderr.write(f"token {row.pk} '{row.name}' ({row.role}) created. Store it now: it is not shown again.")

    def list(self, json: bool, **_: Any) -> None:
        rows = [{"id": t.pk, "name": t.name, "role": t.role, "prefix": t.prefix, "created_by": t.created_by,
                 "created_at": t.created_at.isoformat(),
                 "last_used_at": t.last_used_at.isoformat() if t.last_used_at else None,
                 "revoked_at": t.revoked_at.isoformat() if t.revoked_at else None} for t in ApiToken.objects.all()]
        if json:
            self.stdout.write(_dumps(rows))
            return
        if not rows:
            self.stdout.write("no tokens")
            return
        self.stdout.write(f"{'ID':>4}  {'NAME':<20} {'ROLE':<8} {'PREFIX':<12}  {'LAST USED':<16}  STATE")
        for r in rows:
            used = (r["last_used_at"] or "never")[:16].replace("T", " ")
            state = f"revoked {r['revoked_at'][:10]}" if r["revoked_at"] else "active"
            self.stdout.write(f"{r['id']:>4}  {r['name'][:20]:<20} {r['role']:<8} {r['prefix']:<12}  "
                              f"{used:<16}  {state}")

    def revoke(self, token_id: int, reason: str, by: str, **_: Any) -> None:
        row = ApiToken.objects.filter(pk=token_id).first()
        if row is None:
            raise CommandError(f"no token {token_id}")
        if row.revoked_at is not None:
            raise CommandError(f"token {token_id} was already revoked on {row.revoked_at:%Y-%m-%d %H:%M} UTC")
        row.revoked_at = timezone.now()
        row.save(update_fields=["revoked_at"])
        record(by, "api_token_revoked", f"api_token:{row.pk}", before={"name": row.name, "role": row.role,
                                                                       "prefix": row.prefix}, reason=reason)
        self.stdout.write(f"revoked token {row.pk} '{row.name}'")


def _dumps(rows: list[dict[str, Any]]) -> str:
    return json.dumps(rows, indent=2)
