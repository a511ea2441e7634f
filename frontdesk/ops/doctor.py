"""`frontdesk doctor`: checks the configuration and the outside world, and says how to fix
what it finds. Each check returns Findings; any ERROR makes the command exit non-zero."""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from frontdesk.connectors.circle.client import BASE, CircleClient
from frontdesk.connectors.http import AUTH, ProviderClient, ProviderError, json_body
from frontdesk.connectors.kit.client import KitClient
from frontdesk.intake.models import IntakeLog
from frontdesk.ledger.models import WorkerHeartbeat
from frontdesk.rules.models import RulesVersion

OK, WARNING, ERROR = "ok", "warning", "error"
CLOCK_SKEW_LIMIT = 30.0  # seconds; Stripe's signature tolerance is 300 s, leases are 60 s


@dataclass
class Finding:
    level: str
    check: str
    message: str
    fix: str = ""


def check_settings() -> Iterator[Finding]:
    required = {
        "STRIPE_WEBHOOK_SECRET": (settings.STRIPE_WEBHOOK_SECRETS, "copy the endpoint's whsec_… signing secret from Stripe"),
        "CIRCLE_API_TOKEN": (settings.CIRCLE_API_TOKEN, "create an Admin API v2 token under Circle → Developers → Tokens"),
        "KIT_API_KEY": (settings.KIT_API_KEY, "create a v4 API key under Kit → Settings → Developer"),
        "STRIPE_API_KEY": (settings.STRIPE_API_KEY, "a restricted key with read access to Checkout Sessions"),
    }
    for name, (value, fix) in required.items():
        if not value:
            yield Finding(ERROR, "settings", f"{name} is not set.", f"Set {name} (or {name}_FILE): {fix}.")
    for secret in settings.STRIPE_WEBHOOK_SECRETS:
        if not secret.startswith("whsec_"):
            yield Finding(ERROR, "settings", "STRIPE_WEBHOOK_SECRET holds a value that does not start with whsec_.",
                          "Use the endpoint's signing secret, not an API key.")
    if settings.STRIPE_API_KEY and not settings.STRIPE_API_KEY.startswith(("sk_", "rk_")):
        yield Finding(ERROR, "settings", "STRIPE_API_KEY does not look like a Stripe secret or restricted key.",
                      "It starts with sk_ or rk_.")
    if settings.SANDBOX:
        yield Finding(WARNING, "settings", "Sandbox mode: no provider credentials are set; frontdesk talks to local fakes.")
    if not any(True for _ in RulesVersion.objects.all()[:1]):
        yield Finding(ERROR, "rules", "No rules are loaded, so no payment grants anything.",
                      "Run `frontdesk rules load rules.yaml` or set FRONTDESK_RULES.")


def check_database() -> Iterator[Finding]:
    try:
        executor = MigrationExecutor(connection)
        pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except DatabaseError as exc:
        yield Finding(ERROR, "database", f"The database is unreachable ({type(exc).__name__}).", "Check DATABASE_URL.")
        return
    if pending:
        yield Finding(ERROR, "database", f"{len(pending)} migration(s) are not applied.", "Run `frontdesk migrate`.")
    else:
        yield Finding(OK, "database", "Reachable; migrations applied.")
    if WorkerHeartbeat.objects.filter(seen_at__gte=timezone.now() - timedelta(minutes=1)).exists():
        yield Finding(OK, "worker", "A worker was seen in the last minute.")
    else:
        yield Finding(ERROR, "worker", "No worker has been seen in the last minute: nothing is delivered.",
                      "Start `frontdesk worker` (or `frontdesk run`).")
    last = IntakeLog.objects.filter(provider="stripe", status_code=200).order_by("-received_at").first()
    if last is None:
        yield Finding(WARNING, "webhook", "The Stripe webhook secret has not verified any event yet.",
                      "Send a test event from Stripe's dashboard (or `frontdesk send-test-event`).")
    elif last.received_at < timezone.now() - timedelta(days=1):
        yield Finding(WARNING, "webhook", f"The last verified Stripe event arrived {last.received_at:%Y-%m-%d %H:%M} UTC.",
                      "Check the endpoint in Stripe's dashboard: disabled, or failing with a bad signature?")
    else:
        yield Finding(OK, "webhook", "The webhook secret verified an event in the last day.")


def _call(client: ProviderClient, path: str, check: str, **params: Any) -> tuple[dict[str, Any] | None, list[Finding]]:
    try:
        response = client.request("GET", path, params=params, ok=(200,))
    except ProviderError as exc:
        if exc.kind == "auth":
            return None, [Finding(ERROR, check, f"The {client.provider} credentials were refused ({exc.status}): {exc.message}",
                                  f"Replace the {client.provider} token/key; check it is for the right account and API.")]
        return None, [Finding(ERROR, check, f"{client.provider} answered {exc.reason}: {exc.message}",
                              "Check the URL setting and the provider's status page.")]
    findings = []
    date = response.headers.get("Date")
    if date:
        skew = time.time() - email.utils.parsedate_to_datetime(date).timestamp()
        if abs(skew) > CLOCK_SKEW_LIMIT:
            findings.append(Finding(ERROR, "clock", f"This machine's clock is {skew:+.0f} s off {client.provider}'s.",
                                    "Enable NTP time sync: signatures, leases and rate limits depend on the clock."))
    return json_body(response), findings


def _all_ids(client: ProviderClient, path: str, key: str, check: str, kit: bool = False) -> tuple[set[int] | None, list[Finding]]:
    ids: set[int] = set()
    findings: list[Finding] = []
    params: dict[str, Any] = {"per_page": 100} if not kit else {"per_page": 1000}
    for page in range(1, 51):  # bounded: 5,000 Circle records / 50,000 Kit records
        if not kit:
            params["page"] = page
        body, extra = _call(client, path, check, **params)
        findings += extra
        if body is None:
            return None, findings
        records = body.get(key if kit else "records") or []
        ids |= {int(r["id"]) for r in records if isinstance(r, dict) and str(r.get("id", "")).isdigit()}
        if kit:
            pagination = body.get("pagination") or {}
            if not pagination.get("has_next_page"):
                break
            params["after"] = pagination.get("end_cursor")
        elif not body.get("has_next_page"):
            break
    return ids, findings


def _rule_targets(provider: str) -> dict[str, set[int]]:
    current = RulesVersion.current()
    wanted: dict[str, set[int]] = {}
    for spec in (current.parsed["entitlements"].values() if current else []):
        for kind, ids in spec[provider].items():
            if isinstance(ids, list):
                wanted.setdefault(kind, set()).update(ids)
    return wanted


CIRCLE_LISTS = {"spaces": "spaces", "space_groups": "space_groups", "access_groups": "access_groups",
                "member_tags": "member_tags"}


def check_circle() -> Iterator[Finding]:
    if not settings.CIRCLE_API_TOKEN:
        return
    with CircleClient.from_settings() as circle:
        body, findings = _call(circle, f"{BASE}/community_members", "circle", per_page=1)
        yield from findings
        if body is None:
            return
        yield Finding(OK, "circle", "The Circle token is valid for the Admin API v2.")
        for kind, ids in _rule_targets("circle").items():
            existing, extra = _all_ids(circle, f"{BASE}/{CIRCLE_LISTS[kind]}", kind, "circle")
            yield from extra
            if existing is None:
                continue
            for missing in sorted(ids - existing):
                yield Finding(ERROR, "rules", f"Circle has no {kind[:-1].replace('_', ' ')} {missing}, which the rules name.",
                              "Fix the id in the rules file, or create it in Circle.")


def check_kit() -> Iterator[Finding]:
    if not settings.KIT_API_KEY:
        return
    with KitClient.from_settings() as kit:
        wanted = _rule_targets("kit")
        tags, findings = _all_ids(kit, "/v4/tags", "tags", "kit", kit=True)
        yield from findings
        if tags is None:
            return
        yield Finding(OK, "kit", "The Kit API key is valid.")
        for missing in sorted(wanted.get("tags", set()) - tags):
            yield Finding(ERROR, "rules", f"Kit has no tag {missing}, which the rules name.",
                          "Fix the id in the rules file, or create the tag in Kit.")
        sequences, findings = _all_ids(kit, "/v4/sequences", "sequences", "kit", kit=True)
        yield from findings
        for missing in sorted(wanted.get("sequences", set()) - (sequences or set())):
            yield Finding(ERROR, "rules", f"Kit has no sequence {missing}, which the rules name.",
                          "Fix the id in the rules file, or create the sequence in Kit.")
        body, findings = _call(kit, "/v4/custom_fields", "kit", per_page=1000)
        yield from findings
        keys = {f.get("key") for f in (body or {}).get("custom_fields", [])}
        current = RulesVersion.current()
        fields = {k for spec in (current.parsed["entitlements"].values() if current else []) for k in spec["kit"]["fields"]}
        for missing in sorted(fields - keys) if body is not None else []:
            yield Finding(ERROR, "rules", f"Kit has no custom field with key '{missing}', which the rules set.",
                          "Create the field in Kit (its key is derived from the label) or fix the rules.")


def check_hubspot() -> Iterator[Finding]:
    if not getattr(settings, "HUBSPOT_ACCESS_TOKEN", ""):
        return  # HubSpot is optional
    from frontdesk.connectors.hubspot.setup import check_properties

    try:
        report = check_properties()
    except ProviderError as exc:
        fix = ("Create a private app token with the scopes in docs/crm.md and set HUBSPOT_ACCESS_TOKEN."
               if exc.kind == AUTH else "Try again; if it persists, check status.hubspot.com.")
        yield Finding(ERROR, "hubspot", f"HubSpot answered {exc.reason}: {exc.message}", fix)
        return
    yield Finding(OK, "hubspot", "The HubSpot token is valid.")
    for name in report["missing"]:
        yield Finding(ERROR, "hubspot", f"HubSpot has no contact property {name}: every hubspot.sync would go to review.",
                      "Create it: see docs/crm.md, step 3 (ensure_properties creates all three).")
    for name in report["wrong_type"]:
        yield Finding(WARNING, "hubspot", f"The HubSpot property {name} has another type than frontdesk creates.",
                      "See the property table in docs/crm.md.")


CHECKS: list[Callable[[], Iterator[Finding]]] = [check_settings, check_database, check_circle, check_kit, check_hubspot]


def run_checks() -> list[Finding]:
    findings: list[Finding] = []
    for check in CHECKS:
        try:
            findings.extend(check())
        except Exception as exc:  # a crashing check is itself a finding, not a crash of doctor
            findings.append(Finding(ERROR, check.__name__, f"The check crashed: {type(exc).__name__}: {exc}"))
    return findings
