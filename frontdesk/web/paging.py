"""Lists: at most 50 rows a page, filters kept in the links."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from django.core.paginator import Page, Paginator
from django.http import HttpRequest

PER_PAGE = 50


def paginate(request: HttpRequest, rows: Any, per_page: int = PER_PAGE) -> Page:
    return Paginator(rows, per_page).get_page(request.GET.get("page"))


def day(value: str | None, *, end: bool = False) -> datetime | None:
    """A ``YYYY-MM-DD`` filter as a UTC moment (the end of the day when ``end``), or None."""
    if not value:
        return None
    try:
        moment = datetime.strptime(value.strip(), "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        return None
    return moment + timedelta(days=1) if end else moment


def hours(value: str | None) -> int | None:
    """A ``since`` filter in hours (1 to 24·90), or None."""
    if not value or not value.strip().isdigit():
        return None
    n = int(value)
    return n if 1 <= n <= 24 * 90 else None


def clean(request: HttpRequest, *names: str) -> dict[str, str]:
    """The given filters as sent, stripped, without empty ones."""
    return {n: request.GET.get(n, "").strip() for n in names if request.GET.get(n, "").strip()}
