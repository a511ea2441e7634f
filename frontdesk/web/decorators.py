"""Decorators for the admin app's views: who may look, and which views change something."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http import HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from frontdesk.web.roles import role_required

View = Callable[..., HttpResponse]


def action(role: str) -> Callable[[View], View]:
    """A view that changes something: POST only (with Django's CSRF check) and ``role`` or
    higher. The role is checked first, so anyone without it gets 403 (or the login page)
    whatever the method."""

    def decorator(view: View) -> View:
        wrapped = role_required(role)(require_POST(view))
        wrapped.is_action = True  # type: ignore[attr-defined]
        return wrapped

    return decorator


def page(role: str) -> Callable[[View], View]:
    """A page that only shows something: GET or HEAD, ``role`` or higher."""

    def decorator(view: View) -> View:
        # never_cache: pages show customer data; Back after signing out must not show them.
        return role_required(role)(never_cache(require_safe(view)))

    return decorator


def form_page(role: str) -> Callable[[View], View]:
    """A page with a form that posts back to itself: GET, HEAD or POST, ``role`` or higher."""

    def decorator(view: View) -> View:
        return role_required(role)(never_cache(require_http_methods(["GET", "HEAD", "POST"])(view)))

    return decorator


def actor(request: Any) -> str:
    """The name audit entries record for the signed-in person."""
    return str(request.user.get_username())
