# The two commands of the README: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=
# Two processes on this 2-core machine; end-to-end tests spend most of their time waiting.
WORKERS ?= 2

.PHONY: run test test-sqlite test-postgres lint clean

$(BIN)/python:
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "frontdesk needs Python 3.11+"'
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

run: $(VENV)/.installed
	$(BIN)/frontdesk migrate --verbosity 0
	$(BIN)/frontdesk run

test: $(VENV)/.installed
	$(BIN)/frontdesk makemigrations --check --dry-run --verbosity 0
	$(MAKE) test-sqlite
	@if [ -n "$$TEST_POSTGRES_URL" ]; then $(MAKE) test-postgres; \
	 else echo "TEST_POSTGRES_URL is not set: skipped the PostgreSQL run"; fi

test-sqlite: $(VENV)/.installed
	env -u DATABASE_URL $(BIN)/pytest -n $(WORKERS) $(PYTEST_ARGS)

test-postgres: $(VENV)/.installed
	DATABASE_URL="$$TEST_POSTGRES_URL" $(BIN)/pytest -n $(WORKERS) $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) var *.egg-info
