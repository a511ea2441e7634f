"""Change awareness: on start, fingerprint the configuration and write what changed since the
previous start to the audit log, so "did the last deploy touch keys or rules?" has an answer
without revealing any value."""

from __future__ import annotations

import hashlib
import json
import subprocess  # nosec B404  # runs git with a fixed argument list only
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction

import frontdesk
from frontdesk import conf
from frontdesk.audit.models import AuditEntry, ConfigSnapshot
from frontdesk.rules.models import RulesVersion

TRACKED = (
    "FRONTDESK_ENV", "FRONTDESK_SECRET_KEY", "FRONTDESK_DEBUG", "FRONTDESK_ALLOWED_HOSTS", "DATABASE_URL",
    "FRONTDESK_RULES", "STRIPE_WEBHOOK_SECRET", "STRIPE_API_KEY", "STRIPE_API_URL", "CIRCLE_API_TOKEN",
    "CIRCLE_API_URL", "KIT_API_KEY", "KIT_API_URL", "CIRCLE_RATE_LIMIT", "KIT_RATE_LIMIT", "STRIPE_RATE_LIMIT",
    "FRONTDESK_ALERT_SLACK_URL", "FRONTDESK_ALERT_EMAIL_TO", "FRONTDESK_SMTP_URL", "FRONTDESK_ALERT_WEBHOOK_URL",
    "FRONTDESK_ALERT_WEBHOOK_SECRET", "FRONTDESK_METRICS_TOKEN", "HUBSPOT_ACCESS_TOKEN", "HUBSPOT_API_URL",
    "HUBSPOT_RATE_LIMIT", "FRONTDESK_SUPPORT_SLACK_URL", "FRONTDESK_SUPPORT_EMAIL_TO", "FRONTDESK_WEBHOOK_URL",
    "FRONTDESK_WEBHOOK_SECRET",
)


def _code_version() -> str:
    root = Path(frontdesk.__file__).resolve().parent.parent
    try:
        sha = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True,  # nosec B603 B607  # fixed argv, no shell; git from PATH on purpose
                             text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        sha = ""
    return f"{frontdesk.__version__}+{sha}" if sha else frontdesk.__version__


def fingerprint() -> dict[str, Any]:
    values: dict[str, dict[str, Any]] = {}
    for name in TRACKED:
        value = conf.secret(name)
        # A short unsalted hash: enough to see that a value changed, too short to confirm a guess.
        values[name] = {"set": bool(value), "hash": hashlib.sha256(value.encode()).hexdigest()[:8] if value else ""}
    current = RulesVersion.current()
    return {"settings": values, "rules_version": current.number if current else None,
            "code_version": _code_version(), "environment": settings.ENVIRONMENT}


def changes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    diff: dict[str, Any] = {}
    for name, now in after["settings"].items():
        was = before.get("settings", {}).get(name, {"set": False, "hash": ""})
        if was != now:
            diff[name] = ("added" if now["set"] and not was["set"] else
                          "removed" if was["set"] and not now["set"] else "changed")
    for key in ("rules_version", "code_version", "environment"):
        if before.get(key) != after.get(key):
            diff[key] = {"from": before.get(key), "to": after.get(key)}
    return diff


def record_start(component: str) -> dict[str, Any]:
    """Store the fingerprint if it differs from the last one, with an audit entry naming what
    changed. Returns the changes (empty when nothing did)."""
    now = fingerprint()
    digest = hashlib.sha256(json.dumps(now, sort_keys=True).encode()).hexdigest()
    with transaction.atomic():
        last = ConfigSnapshot.objects.first()
        if last is not None and last.digest == digest:
            return {}
        diff = changes(last.fingerprint if last else {"settings": {}}, now)
        ConfigSnapshot.objects.create(digest=digest, fingerprint=now)
        AuditEntry.objects.create(
            actor="deploy", action="config_changed" if last else "config_first_seen", target=component,
            before={k: (last.fingerprint["settings"].get(k) if last and k in last.fingerprint["settings"] else None)
                    for k in diff if k in now["settings"]},
            after={"changes": diff},
            reason=f"{component} started with a different configuration" if last else f"{component} first start",
        )
    return diff
