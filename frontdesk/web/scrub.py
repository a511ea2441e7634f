"""Keeping secrets off the pages. Operators may see e-mail addresses and names; they never
see signing secrets, API keys or tokens. This removes only *known* secret shapes (Stripe
``whsec_``/``sk_``/``rk_`` keys, ``…_secret_…`` client secrets, bearer and token values,
values under keys that name a secret) and the exact values of the secrets frontdesk is
configured with. It is deliberately simple: it is a safety net, not a data classifier."""

from __future__ import annotations

import json
import re
from typing import Any

from django.conf import settings

MASK = "[redacted]"
SECRET_RE = re.compile(
    r"\b(?:whsec|sk_live|sk_test|rk_live|rk_test|pk_live|pk_test)_[A-Za-z0-9+/=_-]+"
    r"|\b[A-Za-z0-9]+_secret_[A-Za-z0-9]+"
    r"|(?<=Bearer )\S+|(?<=Token )\S+"
)
SECRET_KEYS = re.compile(r"(?i)(secret|password|passwd|api_key|apikey|token|authorization|signature)$")


def configured_secrets() -> list[str]:
    """Every secret value in the settings (longer than 5 characters, so short test values
    cannot blank ordinary words)."""
    values: list[Any] = [
        settings.SECRET_KEY, settings.STRIPE_API_KEY, settings.CIRCLE_API_TOKEN, settings.KIT_API_KEY,
        getattr(settings, "HUBSPOT_ACCESS_TOKEN", ""), getattr(settings, "METRICS_TOKEN", ""),
        *settings.STRIPE_WEBHOOK_SECRETS,
        settings.ALERTS.get("slack_url"), settings.ALERTS.get("webhook_secret"), settings.ALERTS.get("smtp_url"),
        settings.SUPPORT.get("slack_url"), settings.OUTBOUND_WEBHOOK.get("secret"),
    ]
    return sorted({v for v in values if isinstance(v, str) and len(v) > 5}, key=len, reverse=True)


def scrub(text: str) -> str:
    for value in configured_secrets():
        text = text.replace(value, MASK)
    return SECRET_RE.sub(MASK, text)


def _walk(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: (MASK if SECRET_KEYS.search(str(k)) and value[k] not in (None, "", [], {}) else _walk(v))
                for k, v in value.items()}
    if isinstance(value, list):
        return [_walk(v) for v in value]
    if isinstance(value, str):
        return scrub(value)
    return value


def pretty_json(raw: str) -> str:
    """A stored payload, indented, with secrets masked. A body that is not JSON is shown as
    text (still masked)."""
    try:
        data = json.loads(raw)
    except ValueError:
        return scrub(raw)
    return json.dumps(_walk(data), indent=2, ensure_ascii=False, sort_keys=False)
