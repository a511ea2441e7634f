"""The admin app. Every URL name starts with ``web-``; every view but sign-in and sign-out
needs a role (tests/web/test_access.py walks this list)."""

from django.urls import path

from frontdesk.web.views import auth, customers, dashboard, doctor, events, jobs, logs, rules, users

urlpatterns = [
    path("", dashboard.dashboard, name="web-home"),
    path("login", auth.login, name="web-login"),
    path("logout", auth.logout, name="web-logout"),
    path("doctor", doctor.doctor, name="web-doctor"),
    path("jobs", jobs.job_list, name="web-jobs"),
    path("jobs/retry", jobs.jobs_retry, name="web-jobs-retry"),
    path("jobs/<int:pk>", jobs.job_detail, name="web-job"),
    path("jobs/<int:pk>/retry", jobs.job_retry, name="web-job-retry"),
    path("jobs/<int:pk>/cancel", jobs.job_cancel, name="web-job-cancel"),
    path("jobs/<int:pk>/resolve", jobs.job_resolve, name="web-job-resolve"),
    path("events", events.event_list, name="web-events"),
    path("events/test", events.test_event, name="web-test-event"),
    path("events/<int:pk>", events.event_detail, name="web-event"),
    path("events/<int:pk>/progress", events.event_progress, name="web-event-progress"),
    path("events/<int:pk>/replay", events.event_replay, name="web-event-replay"),
    path("customers", customers.customer_list, name="web-customers"),
    path("customers/<int:pk>", customers.customer_detail, name="web-customer"),
    path("customers/<int:pk>/override", customers.customer_override, name="web-customer-override"),
    path("overrides/<int:pk>/remove", customers.override_remove, name="web-override-remove"),
    path("intake", logs.intake_log, name="web-intake"),
    path("audit", logs.audit_log, name="web-audit"),
    path("rules", rules.rules, name="web-rules"),
    path("rules/v<int:number>", rules.rules_version, name="web-rules-version"),
    path("rules/preview", rules.rules_preview, name="web-rules-preview"),
    path("rules/apply", rules.rules_apply, name="web-rules-apply"),
    path("users", users.users, name="web-users"),
    path("users/<int:pk>/role", users.user_role, name="web-user-role"),
    path("users/<int:pk>/active", users.user_active, name="web-user-active"),
]
