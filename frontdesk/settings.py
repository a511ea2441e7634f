"""Django settings, read from the environment only (see docs/configuration.md)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import dj_database_url

from frontdesk import conf
from frontdesk.conf import ConfigError
from frontdesk.intake.throttling import parse_networks, parse_rate

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("FRONTDESK_VAR_DIR", BASE_DIR / "var"))

ENVIRONMENT = conf.choice("FRONTDESK_ENV", "development", ("development", "production"))
PRODUCTION = ENVIRONMENT == "production"

# A fixed key is fine for a development sandbox and refused in production (check below).
DEV_SECRET_KEY = "frontdesk-development-key-not-for-production"  # nosec B105  # public on purpose; refused in production
SECRET_KEY = conf.secret("FRONTDESK_SECRET_KEY", DEV_SECRET_KEY)
DEBUG = conf.flag("FRONTDESK_DEBUG", False)
ALLOWED_HOSTS = [h.strip() for h in os.environ.get(
    "FRONTDESK_ALLOWED_HOSTS", "" if PRODUCTION else "*").split(",") if h.strip()]

# --- Providers --------------------------------------------------------------------------
STRIPE_WEBHOOK_SECRETS = conf.secret_list("STRIPE_WEBHOOK_SECRET")
STRIPE_API_KEY = conf.secret("STRIPE_API_KEY")
STRIPE_API_URL = conf.url("STRIPE_API_URL", "https://api.stripe.com")
CIRCLE_API_TOKEN = conf.secret("CIRCLE_API_TOKEN")
CIRCLE_API_URL = conf.url("CIRCLE_API_URL", "https://app.circle.so")
KIT_API_KEY = conf.secret("KIT_API_KEY")
KIT_API_URL = conf.url("KIT_API_URL", "https://api.kit.com")
HUBSPOT_ACCESS_TOKEN = conf.secret("HUBSPOT_ACCESS_TOKEN")  # optional CRM (docs/crm.md)
HUBSPOT_API_URL = conf.url("HUBSPOT_API_URL", "https://api.hubapi.com")
FRONTDESK_RULES = os.environ.get("FRONTDESK_RULES", "")

# Stripe's documented default tolerance; applied in both directions (stripe.md §1.2 trap 3).
WEBHOOK_TOLERANCE_SECONDS = conf.integer("FRONTDESK_WEBHOOK_TOLERANCE", 300, minimum=1)
WEBHOOK_MAX_BODY_BYTES = 256 * 1024
# Requests per address on the intake, counted in each web process (docs/security.md);
# "off" or "0/60" turns it off (the benchmark does).
INTAKE_RATE_LIMIT = parse_rate(os.environ.get("FRONTDESK_INTAKE_RATE_LIMIT", "3000/60"))
# Reverse proxies whose X-Forwarded-For is believed: comma-separated addresses or CIDR ranges.
TRUSTED_PROXIES = parse_networks(os.environ.get("FRONTDESK_TRUSTED_PROXIES", ""))

# Delivery policy per provider. Rate limits are the providers' documented ones
# (kit.md §3, circle.md §4); Stripe's read limit is 25/s in sandbox (stripe.md §8.3).
# A 429 without Retry-After waits RATE_LIMIT_WAIT: Kit's "a wait of up to 60 seconds resets
# the limit" (kit.md §2–3); Circle documents no header either (circle.md §4).
PROVIDERS: dict[str, dict[str, object]] = {
    name: {
        "rate_limit": conf.rate(f"{name.upper()}_RATE_LIMIT", default_rate),
        "retry_max_age": conf.number(f"{name.upper()}_RETRY_MAX_AGE", 3 * 24 * 3600, minimum=1),
        "rate_limit_wait": conf.number(f"{name.upper()}_RATE_LIMIT_WAIT", default_wait, minimum=0),
    }
    for name, default_rate, default_wait in (
        ("circle", "2000/300", 60.0), ("kit", "120/60", 60.0), ("stripe", "20/1", 1.0),
        # HubSpot: 100 requests/10 s per private app on Free/Starter (developers.hubspot.com/docs/api/usage-details)
        ("hubspot", "100/10", 10.0))
}
RETRY_BASE_SECONDS = conf.number("FRONTDESK_RETRY_BASE", 10.0, minimum=0.001)
RETRY_CAP_SECONDS = conf.number("FRONTDESK_RETRY_CAP", 3600.0, minimum=0.001)
CIRCUIT_THRESHOLD = conf.integer("FRONTDESK_CIRCUIT_THRESHOLD", 5, minimum=1)
CIRCUIT_COOLDOWN_SECONDS = conf.number("FRONTDESK_CIRCUIT_COOLDOWN", 30.0, minimum=0.01)
CIRCUIT_MAX_COOLDOWN_SECONDS = conf.number("FRONTDESK_CIRCUIT_MAX_COOLDOWN", 600.0, minimum=0.01)
AUTH_PAUSE_SECONDS = conf.number("FRONTDESK_AUTH_PAUSE", 300.0, minimum=0.01)
LEASE_SECONDS = conf.number("FRONTDESK_LEASE_SECONDS", 60.0, minimum=1)
HTTP_TIMEOUT_SECONDS = conf.number("FRONTDESK_HTTP_TIMEOUT", 10.0, minimum=0.01)

# With no provider credentials in development, frontdesk runs against local fakes of Stripe,
# Circle and Kit (the sandbox), which `frontdesk run` starts on fixed ports.
SANDBOX = not PRODUCTION and not (STRIPE_API_KEY or CIRCLE_API_TOKEN or KIT_API_KEY)
SANDBOX_PORT = conf.integer("FRONTDESK_SANDBOX_PORT", 8101, minimum=1)
SANDBOX_WEBHOOK_SECRET = "whsec_frontdesk_sandbox"  # nosec B105  # public on purpose: sandbox only
if SANDBOX:
    CIRCLE_API_URL, CIRCLE_API_TOKEN = f"http://127.0.0.1:{SANDBOX_PORT}", "circle-test-token"
    KIT_API_URL, KIT_API_KEY = f"http://127.0.0.1:{SANDBOX_PORT + 1}", "kit-test-key"
    STRIPE_API_URL, STRIPE_API_KEY = f"http://127.0.0.1:{SANDBOX_PORT + 2}", "sk_test_frontdesk"
    STRIPE_WEBHOOK_SECRETS = STRIPE_WEBHOOK_SECRETS or [SANDBOX_WEBHOOK_SECRET]


# --- Alerts, metrics, retention ------------------------------------------------------------
ALERTS: dict[str, Any] = {
    "interval": conf.number("FRONTDESK_ALERT_INTERVAL", 15.0, minimum=1),
    "repeat": conf.number("FRONTDESK_ALERT_REPEAT", 3600.0, minimum=1),
    "failure_rate": conf.number("FRONTDESK_ALERT_FAILURE_RATE", 0.02, minimum=0),
    "failure_window": conf.number("FRONTDESK_ALERT_FAILURE_WINDOW", 900.0, minimum=60),
    "failure_min_attempts": conf.integer("FRONTDESK_ALERT_FAILURE_MIN_ATTEMPTS", 5, minimum=1),
    "silence": conf.number("FRONTDESK_ALERT_SILENCE", 6 * 3600.0, minimum=0),
    "rejected_signatures": conf.integer("FRONTDESK_ALERT_REJECTED_SIGNATURES", 5, minimum=1),
    "review_jobs": conf.integer("FRONTDESK_ALERT_REVIEW_JOBS", 1, minimum=1),
    "queue_depth": conf.integer("FRONTDESK_ALERT_QUEUE_DEPTH", 1000, minimum=1),
    "queue_age": conf.number("FRONTDESK_ALERT_QUEUE_AGE", 600.0, minimum=1),
    "slack_url": conf.secret("FRONTDESK_ALERT_SLACK_URL"),
    "webhook_url": os.environ.get("FRONTDESK_ALERT_WEBHOOK_URL", "").strip(),
    "webhook_secret": conf.secret("FRONTDESK_ALERT_WEBHOOK_SECRET"),
    "email_to": [a.strip() for a in os.environ.get("FRONTDESK_ALERT_EMAIL_TO", "").split(",") if a.strip()],
    "email_from": os.environ.get("FRONTDESK_EMAIL_FROM", "frontdesk@localhost"),
    "smtp_url": conf.secret("FRONTDESK_SMTP_URL", "smtp://localhost:25"),
}
if ALERTS["webhook_url"] and not ALERTS["webhook_secret"].startswith("whsec_"):
    raise ConfigError("FRONTDESK_ALERT_WEBHOOK_SECRET must be set to whsec_<base64> when FRONTDESK_ALERT_WEBHOOK_URL is.")
if not str(ALERTS["smtp_url"]).startswith(("smtp://", "smtps://", "smtp+starttls://")):
    raise ConfigError("FRONTDESK_SMTP_URL must start with smtp://, smtps:// or smtp+starttls://.")
# Support notices (payment failed, dispute, job needs review) and the outbound webhook for
# founders' other tools; both are edge-triggered, once per cause.
SUPPORT = {
    "slack_url": conf.secret("FRONTDESK_SUPPORT_SLACK_URL"),
    "email_to": [a.strip() for a in os.environ.get("FRONTDESK_SUPPORT_EMAIL_TO", "").split(",") if a.strip()],
}
OUTBOUND_WEBHOOK = {
    "url": os.environ.get("FRONTDESK_WEBHOOK_URL", "").strip(),
    "secret": conf.secret("FRONTDESK_WEBHOOK_SECRET"),
}
if OUTBOUND_WEBHOOK["url"] and not OUTBOUND_WEBHOOK["secret"].startswith("whsec_"):
    raise ConfigError("FRONTDESK_WEBHOOK_SECRET must be set to whsec_<base64> when FRONTDESK_WEBHOOK_URL is.")
METRICS_TOKEN = conf.secret("FRONTDESK_METRICS_TOKEN")
RETENTION_DAYS = {
    "payloads": conf.integer("FRONTDESK_RETAIN_PAYLOADS_DAYS", 30, minimum=1),
    "intake_log": conf.integer("FRONTDESK_RETAIN_INTAKE_LOG_DAYS", 30, minimum=1),
    "finished_jobs": conf.integer("FRONTDESK_RETAIN_JOBS_DAYS", 90, minimum=1),
}


def _production_problems() -> list[str]:
    problems = []
    if not SECRET_KEY or SECRET_KEY == DEV_SECRET_KEY:
        problems.append("FRONTDESK_SECRET_KEY is missing or the development default; set a long random value.")
    elif len(SECRET_KEY) < 50:
        problems.append("FRONTDESK_SECRET_KEY is shorter than 50 characters.")
    if DEBUG:
        problems.append("FRONTDESK_DEBUG must be false in production.")
    if not STRIPE_WEBHOOK_SECRETS:
        problems.append("STRIPE_WEBHOOK_SECRET is missing; copy the endpoint's whsec_… signing secret.")
    if not ALLOWED_HOSTS:
        problems.append("FRONTDESK_ALLOWED_HOSTS is missing; list the host names the service answers on.")
    return problems


if PRODUCTION and (_problems := _production_problems()):
    raise ConfigError("FRONTDESK_ENV=production refuses to start: " + " ".join(_problems))

# --- Django -----------------------------------------------------------------------------
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "frontdesk.rules",
    "frontdesk.customers",
    "frontdesk.intake",
    "frontdesk.ledger",
    "frontdesk.ops",
    "frontdesk.audit",
    "frontdesk.alerts",
    "frontdesk.web",
    "frontdesk.reconcile",
    "frontdesk.api",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "frontdesk.web.middleware.ContentSecurityPolicy",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "web-login"
LOGIN_REDIRECT_URL = "web-home"
LOGOUT_REDIRECT_URL = "web-login"

ROOT_URLCONF = "frontdesk.urls"
WSGI_APPLICATION = "frontdesk.wsgi.application"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]


def _database() -> dict[str, object]:
    default_sqlite = f"sqlite:///{VAR_DIR / 'frontdesk.sqlite3'}"
    raw = conf.secret("DATABASE_URL", default_sqlite)  # DATABASE_URL_FILE keeps the password out of the environment
    try:
        # Reuse connections for a minute: worker threads look at the queue every second.
        db = dj_database_url.parse(raw, conn_max_age=60)
    except Exception as exc:  # the library raises several types for a bad URL
        raise ConfigError(f"DATABASE_URL is not a valid database URL ({exc}).") from None
    if db["ENGINE"] == "django.db.backends.sqlite3":
        Path(str(db["NAME"])).parent.mkdir(parents=True, exist_ok=True)
        db["OPTIONS"] = {
            # IMMEDIATE takes the write lock at BEGIN, so concurrent writers queue on
            # busy_timeout instead of failing mid-transaction with "database is locked".
            "transaction_mode": "IMMEDIATE",
            # synchronous=FULL: a 200 to Stripe means the event survived a power loss.
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA busy_timeout=20000;",
            "timeout": 20,
        }
        # Tests run separate worker processes, so the test database must be a file.
        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
        db["TEST"] = {"NAME": str(VAR_DIR / f"test-{worker}.sqlite3")}
    elif db["ENGINE"] == "django.db.backends.postgresql":
        db.setdefault("OPTIONS", {})
        # No health check (a SELECT 1 before each request's first query, one round trip in six
        # of a webhook's): a connection that broke since its last use (the database restarted)
        # fails that one request, which Django then closes. Stripe retries a 503; a worker
        # thread logs the error and claims again on a new connection (docs/operations.md).
        db["CONN_HEALTH_CHECKS"] = False
    else:
        raise ConfigError(f"DATABASE_URL uses {db['ENGINE']}; only SQLite and PostgreSQL are supported.")
    return db


DATABASES = {"default": _database()}
# How long (on average: it is jittered) an idle worker thread waits before looking at the queue
# again. It bounds how soon a new event is picked up (ledger/wakeup.py); on PostgreSQL a job
# queued by another job wakes the workers at once (LISTEN/NOTIFY), SQLite has no such notice
# between processes and looks more often.
WORKER_POLL_SECONDS = conf.number(
    "FRONTDESK_WORKER_POLL", 0.5 if DATABASES["default"]["ENGINE"].endswith("postgresql") else 0.25, minimum=0.01)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
# WhiteNoise serves the app's few static files straight from the installed package.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = not PRODUCTION

SESSION_COOKIE_SECURE = PRODUCTION
CSRF_COOKIE_SECURE = PRODUCTION
SESSION_COOKIE_HTTPONLY = True
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
# Production runs behind a TLS-terminating reverse proxy (docs/deploy.md) that sets
# X-Forwarded-Proto; health probes from inside the network stay on plain HTTP.
if PRODUCTION:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = conf.flag("FRONTDESK_SSL_REDIRECT", True)
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
    SECURE_HSTS_SECONDS = conf.integer("FRONTDESK_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = conf.flag("FRONTDESK_HSTS_PRELOAD", False)
    # Preloading binds the whole domain and its subdomains to HTTPS for months, beyond this
    # service: an owner's choice (FRONTDESK_HSTS_PRELOAD), not a default.
    SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]

LOGGING_CONFIG = None  # frontdesk.logs configures logging (structured JSON)
LOG_LEVEL = os.environ.get("FRONTDESK_LOG_LEVEL", "INFO").upper()
LOG_FORMAT = conf.choice("FRONTDESK_LOG_FORMAT", "json" if PRODUCTION else "console", ("json", "console"))

from frontdesk.logs import configure_logging  # noqa: E402  (needs the settings above)

configure_logging(LOG_LEVEL, LOG_FORMAT)
