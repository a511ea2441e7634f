from django.urls import include, path

from frontdesk.intake.views import stripe_webhook
from frontdesk.ops.views import healthz, metrics, readyz

urlpatterns = [
    path("webhooks/stripe", stripe_webhook, name="intake-stripe"),
    path("healthz", healthz, name="ops-healthz"),
    path("readyz", readyz, name="ops-readyz"),
    path("metrics", metrics, name="ops-metrics"),
    path("api/v1/", include("frontdesk.api.urls")),
    path("", include("frontdesk.web.urls")),
]
