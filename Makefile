# The two commands a newcomer needs: `make run` and `make test`.
# Each creates or refreshes .venv from pyproject.toml first, so a fresh clone needs nothing else.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: run test lint typecheck browser clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is required"'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

## Migrate the database and run the whole product on its embedded default (Ctrl-C stops it).
run: $(STAMP)
	$(VENV)/bin/robotrader migrate
	$(VENV)/bin/robotrader run

## Lint, type-check and run the whole suite against the real PostgreSQL and Redis.
test: $(STAMP) lint typecheck browser
	$(PY) -m pytest

## Headless Chromium for the dashboard's browser test (Debian's package; CI runs as root).
browser:
	@command -v chromium >/dev/null || (apt-get update && apt-get install -y chromium)

## Style, and the import contracts of DESIGN.md ([tool.importlinter] in pyproject.toml).
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

typecheck: $(STAMP)
	$(VENV)/bin/mypy robotrader bots engine billing db web

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
