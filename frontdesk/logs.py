"""Structured logging: one JSON object a line, with the correlation id of the current event.

Callers bind ``correlation_id`` (and ``job_id``) with :func:`bind`; every line logged in that
context carries them. E-mails are logged only through :func:`email_hash`, never raw.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import structlog


def configure_logging(level: str = "INFO", fmt: str = "json") -> None:
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if fmt == "json" else structlog.dev.ConsoleRenderer(colors=False)
    )
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder()],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # httpx logs full URLs at INFO, and URLs can carry e-mails (Circle's search?email=).
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    return structlog.get_logger(name)


@contextmanager
def bound(**values: object) -> Iterator[None]:
    """Bind values (correlation_id, job_id, …) to every log line inside the block."""
    with structlog.contextvars.bound_contextvars(**values):
        yield


def email_hash(email: str | None) -> str | None:
    """A keyed hash of an e-mail: stable enough to follow one person through logs, useless to
    anyone without the secret key."""
    if not email:
        return None
    from django.conf import settings

    digest = hmac.new(settings.SECRET_KEY.encode(), email.strip().lower().encode(), hashlib.sha256)
    return "em_" + digest.hexdigest()[:16]
