"""What an endpoint accepts: query parameters and JSON body fields, each checked the same way
it is documented (the OpenAPI document is built from these declarations)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

DATETIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
INT_RE = re.compile(r"^[+-]?\d{1,19}$")
ID_MAX = 10**18 - 1  # ids are 64-bit in the database; bigger numbers are simply not found


class ApiError(Exception):
    """An answer other than success: status, a short machine-readable code and a sentence."""

    def __init__(self, status: int, error: str, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.status, self.error, self.detail, self.extra = status, error, detail, extra


def bad_request(detail: str, **extra: Any) -> ApiError:
    return ApiError(400, "bad_request", detail, **extra)


def parse_datetime(value: str, where: str) -> datetime:
    """RFC 3339 date-time with an offset (``2026-12-31T18:00:00Z``), as an aware UTC datetime."""
    if not DATETIME_RE.match(value):
        raise bad_request(f"{where} must be a date-time like 2026-12-31T18:00:00Z (with a time zone)")
    try:
        return datetime.fromisoformat(value.upper().replace("Z", "+00:00")).astimezone(UTC)
    except (ValueError, OverflowError):
        raise bad_request(f"{where} is not a valid date-time") from None


@dataclass(frozen=True)
class Field:
    """One query parameter or body field. ``type`` is string, integer, boolean or date-time."""

    name: str
    type: str = "string"
    description: str = ""
    required: bool = False
    nullable: bool = False
    enum: tuple[str, ...] = ()
    max_length: int = 1000
    pattern: str | None = None
    minimum: int | None = None
    maximum: int | None = None
    default: Any = None
    example: Any = None
    extra: dict[str, Any] = field(default_factory=dict)

    def schema(self) -> dict[str, Any]:
        s: dict[str, Any]
        if self.type == "date-time":
            s = {"type": "string", "format": "date-time"}
        elif self.type == "string":
            s = {"type": "string", "maxLength": self.max_length}
            if self.pattern:
                s["pattern"] = self.pattern
            if self.enum:
                s = {"type": "string", "enum": list(self.enum)}
        else:
            s = {"type": self.type}
        if self.minimum is not None:
            s["minimum"] = self.minimum
        if self.maximum is not None:
            s["maximum"] = self.maximum
        if self.default is not None:
            s["default"] = self.default
        if self.nullable:
            s["type"] = [s["type"], "null"]
            if "enum" in s:
                s["enum"] = [*s["enum"], None]
        if self.example is not None:
            s["examples"] = [self.example]
        return {**s, **self.extra}

    def _where(self, place: str) -> str:
        return f"{place} '{self.name}'"

    def _check(self, value: Any, where: str) -> Any:
        if isinstance(value, str):
            if "\x00" in value:
                raise bad_request(f"{where} must not contain NUL characters")
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise bad_request(f"{where} is not valid text") from None
            if self.type == "date-time":
                return parse_datetime(value, where)
            if self.enum and value not in self.enum:
                raise bad_request(f"{where} must be one of: {', '.join(self.enum)}")
            if len(value) > self.max_length:
                raise bad_request(f"{where} is longer than {self.max_length} characters")
            if self.pattern and not re.search(self.pattern, value):
                raise bad_request(f"{where} does not have the expected form ({self.pattern})")
            return value
        if isinstance(value, int):
            if self.minimum is not None and value < self.minimum:
                raise bad_request(f"{where} must be at least {self.minimum}")
            if self.maximum is not None and value > self.maximum:
                raise bad_request(f"{where} must be at most {self.maximum}")
        return value

    def from_query(self, raw: str) -> Any:
        where = self._where("query parameter")
        if self.type == "integer":
            if not INT_RE.match(raw.strip()):
                raise bad_request(f"{where} must be a whole number")
            return self._check(int(raw), where)
        if self.type == "boolean":
            if raw not in ("true", "false"):
                raise bad_request(f"{where} must be true or false")
            return raw == "true"
        return self._check(raw, where)

    def from_json(self, value: Any) -> Any:
        where = self._where("field")
        if value is None and self.nullable:
            return None
        expected = {"string": str, "date-time": str, "integer": int, "boolean": bool}[self.type]
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            kind = {"string": "a string", "date-time": "a date-time string", "integer": "a whole number",
                    "boolean": "true or false"}[self.type]
            raise bad_request(f"{where} must be {kind}")
        return self._check(value, where)


def _unknown(given: Any, fields: tuple[Field, ...], what: str) -> None:
    """Unknown names are refused rather than ignored: a mistyped filter must not silently
    widen a list, or a bulk action."""
    unknown = sorted(set(given) - {f.name for f in fields})
    if unknown:
        known = ", ".join(f.name for f in fields) or "none"
        raise bad_request(f"unknown {what} {', '.join(repr(u) for u in unknown[:5])[:200]} (known: {known})")


def parse_query(fields: tuple[Field, ...], data: Any) -> dict[str, Any]:
    _unknown(data, fields, "query parameter")
    out: dict[str, Any] = {}
    for f in fields:
        if f.name in data:
            out[f.name] = f.from_query(data[f.name])
        elif f.required:
            raise bad_request(f"query parameter '{f.name}' is required")
        else:
            out[f.name] = f.default
    return out


def parse_body(fields: tuple[Field, ...], data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise bad_request("the body must be a JSON object")
    _unknown(data, fields, "field")
    out: dict[str, Any] = {}
    for f in fields:
        if f.name in data:
            out[f.name] = f.from_json(data[f.name])
        elif f.required:
            raise bad_request(f"field '{f.name}' is required")
        else:
            out[f.name] = f.default
    return out


def object_schema(fields: tuple[Field, ...]) -> dict[str, Any]:
    s: dict[str, Any] = {"type": "object", "additionalProperties": False,
                         "properties": {f.name: {**f.schema(), "description": f.description} for f in fields}}
    required = [f.name for f in fields if f.required]
    if required:
        s["required"] = required
    return s
