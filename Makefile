# Carelight build entry points.
#
#   make test    set up, then run the test suite (PYTEST_ARGS="-k store" to narrow)
#   make demo    set up, then run the demo (DEMO_ARGS to pass options)
#   make bench   set up, then run the benchmarks (BENCH_ARGS to pass options)
#   make check   lint and format check (ruff), no changes
#   make fmt     format and auto-fix (ruff)
#   make clean   remove caches and build output (distclean: also .venv)
#
# `make test` and `make demo` work on a fresh Debian 12 machine: they create
# .venv, install the project into it (again only when pyproject.toml changes)
# and, as root, apt-get the system packages they need.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# Touched after a successful install; older than pyproject.toml means reinstall.
INSTALLED := $(VENV)/.installed
RUFF_PATHS := src tests bench

PYTEST_ARGS ?=
DEMO_ARGS ?=
BENCH_ARGS ?=

# System packages (Debian names) installed by scripts/ensure-system-packages
# when missing. To add one, also teach that script how to probe for it.
# chromium: the browser tests (Playwright drives Debian's Chromium).
# bubblewrap: the SDE job sandbox's namespaces (docs/sde-jobs.md).
TEST_SYSTEM_PACKAGES := postgresql chromium bubblewrap
BENCH_SYSTEM_PACKAGES := postgresql wrk
# The demo uses SQLite by default (see carelight.config); npm for the web assets.
DEMO_SYSTEM_PACKAGES := npm
# The web apps' front-end packages (NHS.UK frontend; axe-core for the accessibility
# tests), installed from package-lock.json again only when it changes.
NODE_INSTALLED := node_modules/.installed

ENSURE := scripts/ensure-system-packages

.PHONY: help demo test bench check fmt clean distclean

help:
	@sed -n 's/^#   \(make .*\)/\1/p' $(firstword $(MAKEFILE_LIST))

$(PY):
	@PYTHON=$(PYTHON) $(ENSURE) python3-venv
	@echo "make: creating $(VENV)"
	$(PYTHON) -m venv $(VENV)

$(INSTALLED): pyproject.toml | $(PY)
	@echo "make: installing carelight[dev] into $(VENV) (pyproject.toml changed)"
	@$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $@

$(NODE_INSTALLED): package.json package-lock.json
	@$(ENSURE) npm
	@echo "make: installing the web apps' front-end packages (npm ci)"
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

demo: $(INSTALLED) $(NODE_INSTALLED)
	@$(ENSURE) $(DEMO_SYSTEM_PACKAGES)
	$(VENV)/bin/carelight demo $(DEMO_ARGS)

# -q plus the -ra from pyproject: dots, then a line per skip/failure with its reason.
# -n 2: pytest-xdist; each worker starts its own PostgreSQL cluster (~0.5 s).
test: $(INSTALLED) $(NODE_INSTALLED)
	@$(ENSURE) $(TEST_SYSTEM_PACKAGES)
	$(PY) -m pytest -q -n 2 $(PYTEST_ARGS)

bench: $(INSTALLED) $(NODE_INSTALLED)
	@$(ENSURE) $(BENCH_SYSTEM_PACKAGES)
	$(PY) bench/run.py $(BENCH_ARGS)
	$(PY) -m bench.gate $(filter --quick,$(BENCH_ARGS))
	$(PY) -m bench.audit $(filter --quick,$(BENCH_ARGS))
	$(PY) -m bench.linkage $(filter --quick,$(BENCH_ARGS))
	$(PY) -m bench.mpi $(filter --quick,$(BENCH_ARGS))
	$(PY) -m bench.care $(filter --quick,$(BENCH_ARGS))
	$(PY) -m bench.sde_query $(filter --quick,$(BENCH_ARGS))
	$(PY) -m bench.sde_dummy $(filter --quick,$(BENCH_ARGS))
	$(PY) -m bench.sde_extract $(filter --quick,$(BENCH_ARGS))

# Both commands run even if the first fails, so one pass shows every problem.
# One line per problem; run ruff without --output-format for the details.
check: $(INSTALLED)
	@status=0; \
	$(VENV)/bin/ruff check --output-format=concise $(RUFF_PATHS) || status=1; \
	$(VENV)/bin/ruff format --check --output-format=concise $(RUFF_PATHS) || status=1; \
	exit $$status

# Fixes first (they can leave code unformatted), formatting last.
fmt: $(INSTALLED)
	@status=0; \
	$(VENV)/bin/ruff check --fix $(RUFF_PATHS) || status=1; \
	$(VENV)/bin/ruff format $(RUFF_PATHS); \
	exit $$status

clean:
	rm -rf .pytest_cache .ruff_cache .hypothesis build dist src/*.egg-info
	find . -path ./$(VENV) -prune -o -type d -name __pycache__ -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV) node_modules
