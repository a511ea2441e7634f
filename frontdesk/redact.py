"""Scrubbing text that may reach logs, job rows or pages: no e-mails, no credentials."""

from __future__ import annotations

import re

EMAIL_RE = re.compile(r"[A-Za-z0-9._%+'-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
SECRET_RE = re.compile(
    r"(?i)\b(whsec_|sk_(live|test)_|rk_(live|test)_)[A-Za-z0-9]+|(?<=Token )\S+|(?<=Bearer )\S+"
)


def redact(text: str, limit: int = 500) -> str:
    from frontdesk.logs import email_hash

    text = EMAIL_RE.sub(lambda m: email_hash(m.group(0)) or "", text)
    text = SECRET_RE.sub("[redacted]", text)
    return text[:limit]
