"""Health endpoints for load balancers and orchestrators. They reveal no configuration."""

from __future__ import annotations

from datetime import timedelta

from django.db import DatabaseError, connection
from django.db.migrations.executor import MigrationExecutor
import hmac

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.http import require_GET

from frontdesk.ledger.models import WorkerHeartbeat

WORKER_FRESH = timedelta(minutes=1)


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """The process is up and serving requests."""
    return JsonResponse({"status": "ok"})


@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    """Ready for traffic: the database answers, migrations are applied, a worker is alive."""
    checks: dict[str, str] = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
        executor = MigrationExecutor(connection)
        pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
        checks["migrations"] = "ok" if not pending else f"{len(pending)} pending"
        fresh = WorkerHeartbeat.objects.filter(seen_at__gte=timezone.now() - WORKER_FRESH).exists()
        checks["worker"] = "ok" if fresh else "no worker seen in the last minute"
    except DatabaseError:
        checks["database"] = "unavailable"
    ready = all(v == "ok" for v in checks.values()) and len(checks) == 3
    return JsonResponse({"status": "ok" if ready else "unavailable", "checks": checks}, status=200 if ready else 503)


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus metrics, for a scraper holding FRONTDESK_METRICS_TOKEN (Bearer)."""
    from frontdesk.ops.metrics import render

    token = settings.METRICS_TOKEN
    if not token:
        return HttpResponse("metrics are off: set FRONTDESK_METRICS_TOKEN\n", status=404, content_type="text/plain")
    given = request.META.get("HTTP_AUTHORIZATION", "").removeprefix("Bearer ").strip()
    if not hmac.compare_digest(given.encode(), token.encode()):
        return HttpResponse("unauthorized\n", status=401, content_type="text/plain",
                            headers={"WWW-Authenticate": "Bearer"})
    return HttpResponse(render(), content_type="text/plain; version=0.0.4; charset=utf-8")
