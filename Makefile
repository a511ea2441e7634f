# The two commands of the README: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# pip-audit, bandit and uv live in a venv of their own, so they never enter the app's lock.
# It sits inside .venv so that it is ignored by git and removed by `make clean` with the rest.
TOOLS := $(VENV)/tools
TOOLS_BIN := $(TOOLS)/bin
PYTEST_ARGS ?=
# Two processes on this 2-core machine; end-to-end tests spend most of their time waiting.
WORKERS ?= 2
# The lock files are resolved for CI's and the developers' machines: CPython 3.11, Linux x86_64.
LOCK := $(TOOLS_BIN)/uv pip compile --quiet --generate-hashes --python-version 3.11 \
	--python-platform x86_64-manylinux_2_28 --custom-compile-command "make lock" $(LOCK_ARGS)
# `make lock` keeps the current pins where pyproject.toml still allows them; upgrade with
# `make lock LOCK_ARGS=--upgrade` (all) or `LOCK_ARGS="--upgrade-package django"` (one).
LOCK_ARGS ?=
# Known vulnerabilities accepted on purpose, one `--ignore-vuln ID` each with the reason in a
# comment beside it (docs/security.md). Empty: every known vulnerability fails the audit.
AUDIT_IGNORE :=

.PHONY: chromium run test test-sqlite test-postgres audit audit-deps audit-code lock clean

$(BIN)/python:
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "frontdesk needs Python 3.11+"'
	$(PYTHON) -m venv $(VENV)

# Every installed file is checked against the hash in the lock; the project itself is then
# installed editable, without dependencies, built with the locked setuptools.
$(VENV)/.installed: requirements.lock pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q --require-hashes -r requirements.lock
	$(BIN)/pip install -q --no-deps --no-build-isolation -e .
	touch $@

$(VENV)/.installed-test: requirements-test.lock $(VENV)/.installed
	$(BIN)/pip install -q --require-hashes -r requirements-test.lock
	touch $@

$(TOOLS)/.installed: requirements-tools.lock | $(BIN)/python
	test -x $(TOOLS_BIN)/python || $(PYTHON) -m venv $(TOOLS)
	$(TOOLS_BIN)/pip install -q --require-hashes -r requirements-tools.lock
	touch $@

run: $(VENV)/.installed
	$(BIN)/frontdesk migrate --verbosity 0
	$(BIN)/frontdesk run

# The browser tests drive Debian's chromium through Playwright (never `playwright install`).
chromium:
	@command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "the browser tests need Debian's chromium: sudo apt-get install chromium"; exit 1; fi; }

test: $(VENV)/.installed-test chromium
	$(BIN)/frontdesk makemigrations --check --dry-run --verbosity 0
	$(MAKE) test-sqlite
	@if [ -n "$$TEST_POSTGRES_URL" ]; then $(MAKE) test-postgres; \
	 else echo "TEST_POSTGRES_URL is not set: skipped the PostgreSQL run"; fi

test-sqlite: $(VENV)/.installed-test
	env -u DATABASE_URL $(BIN)/pytest -n $(WORKERS) $(PYTEST_ARGS)

test-postgres: $(VENV)/.installed-test
	DATABASE_URL="$$TEST_POSTGRES_URL" $(BIN)/pytest -n $(WORKERS) $(PYTEST_ARGS)

# Known vulnerabilities in every locked requirement, from PyPI's advisory data (its JSON API,
# per pinned version), then Bandit over the app's code (settings in pyproject.toml). A package
# pip-audit cannot look up is only "skipped" by pip-audit, and an audit that skipped everything
# still says "No known vulnerabilities found": here a skip fails the audit too, unless
# AUDIT_OFFLINE=warn, which prints NOT AUDITED and goes on (.ci/run: see docs/security.md).
AUDIT_OFFLINE ?= fail
audit: audit-deps audit-code

audit-deps: $(TOOLS)/.installed
	@status=0; $(TOOLS_BIN)/pip-audit --progress-spinner off --disable-pip --require-hashes \
		--vulnerability-service pypi $(AUDIT_IGNORE) -r requirements.lock -r requirements-test.lock \
		> $(TOOLS)/pip-audit.txt 2>&1 || status=$$?; \
	grep -v "could not be audited" $(TOOLS)/pip-audit.txt; grep -m 3 "could not be audited" $(TOOLS)/pip-audit.txt; \
	if [ $$status -ne 0 ]; then echo "make audit: FAILED: known vulnerabilities, or pip-audit could not run (above)" >&2; exit 1; fi; \
	if grep -q "could not be audited" $(TOOLS)/pip-audit.txt; then \
		echo "make audit: NOT AUDITED: $$(grep -c 'could not be audited' $(TOOLS)/pip-audit.txt) locked packages could not be looked up in PyPI's advisory data (all in $(TOOLS)/pip-audit.txt)" >&2; \
		if [ "$(AUDIT_OFFLINE)" != warn ]; then exit 1; fi; \
	fi

audit-code: $(TOOLS)/.installed
	$(TOOLS_BIN)/bandit -q -c pyproject.toml -r frontdesk

# Pin what pyproject.toml and requirements-tools.txt ask for, with the hash of every file (see
# LOCK_ARGS above to upgrade). The test lock is constrained to the runtime lock: the two agree.
lock: $(TOOLS)/.installed
	printf 'setuptools>=68\n' | $(LOCK) pyproject.toml - -o requirements.lock
	printf 'setuptools>=68\n' | $(LOCK) pyproject.toml - --extra test -c requirements.lock -o requirements-test.lock
	$(LOCK) requirements-tools.txt -o requirements-tools.lock

clean:
	rm -rf $(VENV) var *.egg-info
