"""The app's URLs plus views that fail on purpose, with secrets and e-mails in their errors, for
tests/security/test_error_pages.py."""

from django.conf import settings
from django.core.exceptions import SuspiciousOperation
from django.db import OperationalError
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import include, path

EMAILS = ["Leak.Person@Example.com", "second.leak@example.org"]


def secrets() -> list[str]:
    """Every configured secret, as the test sets them."""
    values = [settings.SECRET_KEY, *settings.STRIPE_WEBHOOK_SECRETS, settings.STRIPE_API_KEY,
              settings.CIRCLE_API_TOKEN, settings.KIT_API_KEY, settings.HUBSPOT_ACCESS_TOKEN,
              settings.METRICS_TOKEN, settings.ALERTS["webhook_secret"], settings.ALERTS["slack_url"],
              settings.ALERTS["smtp_url"], settings.SUPPORT["slack_url"], settings.OUTBOUND_WEBHOOK["secret"]]
    return [v for v in values if v]


def _message() -> str:
    return f"provider call failed: token={' '.join(secrets())} for {' and '.join(EMAILS)}"


def boom(request: HttpRequest) -> HttpResponse:
    raise RuntimeError(_message())


def boom_database(request: HttpRequest) -> HttpResponse:
    raise OperationalError(f"connection to server failed: {_message()}")


def boom_suspicious(request: HttpRequest) -> HttpResponse:
    raise SuspiciousOperation(_message())


def boom_missing(request: HttpRequest) -> HttpResponse:
    raise Http404(_message())


urlpatterns = [
    path("_boom/500", boom),
    path("_boom/500-database", boom_database),
    path("_boom/400", boom_suspicious),
    path("_boom/404", boom_missing),
    path("", include("frontdesk.urls")),
]
