"""Storing rules files as immutable, numbered versions."""

from __future__ import annotations

import hashlib
from pathlib import Path

from django.db import IntegrityError, transaction

from frontdesk.rules.models import RulesVersion
from frontdesk.rules.schema import parse


def load_text(content: str, source: str, loaded_by: str = "cli") -> tuple[RulesVersion, bool]:
    """Validate and store ``content``; returns (version, created). Identical content to the
    current version is a no-op."""
    parsed = parse(content, source)
    digest = hashlib.sha256(content.encode()).hexdigest()
    for _ in range(5):  # another process may take the next number at the same moment
        current = RulesVersion.current()
        if current is not None and current.content_hash == digest:
            return current, False
        try:
            with transaction.atomic():
                version = RulesVersion.objects.create(
                    number=(current.number + 1) if current else 1,
                    content=content, content_hash=digest, parsed=parsed,
                    source=source, loaded_by=loaded_by,
                )
            return version, True
        except IntegrityError:
            continue
    raise RuntimeError("could not store the rules version: too much concurrent loading")


def load_file(path: str | Path, loaded_by: str = "cli") -> tuple[RulesVersion, bool]:
    p = Path(path)
    return load_text(p.read_text(encoding="utf-8"), str(p), loaded_by)
