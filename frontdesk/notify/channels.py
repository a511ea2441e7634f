"""Alert channels as ledger job handlers (``notify.slack``, ``notify.email``,
``notify.webhook``): a message that fails is retried and ends in review, never lost."""

from __future__ import annotations

import json
import smtplib
import socket
import time
from email.message import EmailMessage
from urllib.parse import unquote, urlsplit

from django.conf import settings

from frontdesk.connectors.http import AUTH, PERMANENT, TRANSIENT, ProviderClient, ProviderError
from frontdesk.ledger.models import Job
from frontdesk.notify.standard_webhooks import headers as signed_headers


class SlackClient(ProviderClient):
    provider = "slack"


class WebhookClient(ProviderClient):
    provider = "webhook"


def _split(url: str) -> tuple[str, str]:
    """(origin, path?query): httpx would append a slash to a base URL's path."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}", parts.path + (f"?{parts.query}" if parts.query else "")


def _target(job: Job) -> dict[str, object]:
    """Alerts and support notices share the channels but not the destinations."""
    return settings.SUPPORT if job.payload.get("target") == "support" else settings.ALERTS


def slack(job: Job) -> None:
    """Slack incoming webhook: JSON ``{"text"}``, answered ``200 ok``."""
    origin, path = _split(str(_target(job)["slack_url"]))
    with SlackClient(origin, {}) as client:
        client.request("POST", path, json={"text": job.payload["text"]}, ok=(200,))


def webhook(job: Job) -> None:
    body = json.dumps({"type": f"alert.{job.payload['kind']}", "timestamp": int(time.time()),
                       "data": {k: job.payload[k] for k in ("rule", "key", "summary", "started_at")}},
                      separators=(",", ":")).encode()
    # The message id stays the same across retries, so receivers can deduplicate.
    head = signed_headers(settings.ALERTS["webhook_secret"], f"msg_{job.idempotency_key}", int(time.time()), body)
    origin, path = _split(settings.ALERTS["webhook_url"])
    with WebhookClient(origin, {}) as client:
        client.request("POST", path, content=body, headers={**head, "Content-Type": "application/json"},
                       ok=(200, 201, 202, 204))


def email(job: Job) -> None:
    cfg = settings.ALERTS
    url = urlsplit(cfg["smtp_url"])
    message = EmailMessage()
    message["From"] = cfg["email_from"]
    message["To"] = ", ".join(_target(job)["email_to"])  # type: ignore[arg-type]
    message["Subject"] = job.payload["text"][:150]
    message["Message-ID"] = f"<{job.idempotency_key.replace(':', '.')}@frontdesk>"
    message.set_content(f"{job.payload['text']}\n\nAlert: {job.payload['key']}\nSince: {job.payload['started_at']}\n")
    smtp_class = smtplib.SMTP_SSL if url.scheme == "smtps" else smtplib.SMTP
    try:
        with smtp_class(url.hostname or "localhost", url.port or (465 if url.scheme == "smtps" else 25),
                        timeout=settings.HTTP_TIMEOUT_SECONDS) as smtp:
            if url.scheme == "smtp+starttls":
                smtp.starttls()
            if url.username:
                smtp.login(unquote(url.username), unquote(url.password or ""))
            smtp.send_message(message)
    except smtplib.SMTPAuthenticationError as exc:
        raise ProviderError("email", AUTH, "smtp_auth_failed", f"SMTP login refused ({exc.smtp_code})") from None
    except smtplib.SMTPResponseException as exc:
        kind = TRANSIENT if 400 <= exc.smtp_code < 500 else PERMANENT
        raise ProviderError("email", kind, f"smtp_{exc.smtp_code}", f"SMTP answered {exc.smtp_code}") from None
    except smtplib.SMTPRecipientsRefused:
        raise ProviderError("email", PERMANENT, "smtp_recipients_refused", "SMTP refused the recipients") from None
    except (OSError, smtplib.SMTPException) as exc:  # connection refused, timeouts, resets
        kind = "timeout" if isinstance(exc, socket.timeout) else "connection_error"
        raise ProviderError("email", TRANSIENT, kind, f"SMTP: {type(exc).__name__}") from None


def outbound(job: Job) -> None:
    """The founders' webhook: a Standard Webhooks message per business event."""
    cfg = settings.OUTBOUND_WEBHOOK
    body = json.dumps({"type": job.payload["type"], "timestamp": int(time.time()), "data": job.payload["data"]},
                      separators=(",", ":")).encode()
    head = signed_headers(cfg["secret"], f"msg_{job.idempotency_key}", int(time.time()), body)
    origin, path = _split(cfg["url"])
    with WebhookClient(origin, {}) as client:
        client.request("POST", path, content=body, headers={**head, "Content-Type": "application/json"},
                       ok=(200, 201, 202, 204))
