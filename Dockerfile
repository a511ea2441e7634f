# syntax=docker/dockerfile:1
#
# frontdesk: one image for every role. The default command is the web process (gunicorn);
# the same image runs the worker (`frontdesk worker --concurrency N`) and one-off commands
# (`frontdesk migrate`, `frontdesk rules load FILE`). See docs/deploy.md.
#
#   docker build -t frontdesk .

FROM python:3.11-slim AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/frontdesk
WORKDIR /src
# Only what `pip install .` needs (pyproject.toml names README.md as the readme).
COPY requirements.lock pyproject.toml README.md ./
COPY frontdesk ./frontdesk
# Exactly the locked runtime dependencies, each file checked against its hash.
RUN /opt/frontdesk/bin/pip install --require-hashes -r requirements.lock \
 && /opt/frontdesk/bin/pip install --no-deps --no-build-isolation .


FROM python:3.11-slim

# FRONTDESK_ENV=production fails closed: without its secrets the service refuses to start.
# FRONTDESK_VAR_DIR only matters for the SQLite default; production sets DATABASE_URL.
# WEB_CONCURRENCY is gunicorn's own variable for its number of (sync) worker processes.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/frontdesk/bin:$PATH \
    FRONTDESK_ENV=production \
    FRONTDESK_VAR_DIR=/var/lib/frontdesk \
    WEB_CONCURRENCY=2

RUN useradd --system --uid 10001 --user-group --no-create-home \
        --home-dir /var/lib/frontdesk --shell /usr/sbin/nologin frontdesk \
    && install -d -o frontdesk -g frontdesk -m 0750 /var/lib/frontdesk

COPY --from=build /opt/frontdesk /opt/frontdesk
COPY deploy/docker-healthcheck.py /usr/local/lib/frontdesk-healthcheck.py

USER 10001:10001
WORKDIR /var/lib/frontdesk
EXPOSE 8000

# GET /healthz on the local gunicorn (python: the slim image has no curl). Worker and one-off
# containers have no web server: compose.yaml turns this check off for them.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "/usr/local/lib/frontdesk-healthcheck.py"]

# SIGTERM: gunicorn stops accepting, lets requests in flight finish for up to 20 s, then exits
# (give the container a stop timeout above that: compose.yaml uses 30 s).
CMD ["gunicorn", "frontdesk.wsgi", "--bind", "0.0.0.0:8000", "--graceful-timeout", "20"]
