# The README's commands. Each bootstraps what it needs (virtual env, install, services).
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3.12 || command -v python3.13 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: demo test lint typecheck unit serve simulator bench chaos services clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

## demo: the proxy in front of the embedded simulator, with a synthetic workload (~1 minute);
## from a terminal it then stays up until Ctrl-C. Installs prometheus with apt-get if missing (root only).
demo: $(STAMP)
	-@scripts/ensure-services.sh --optional prometheus
	$(BIN)/modellix-proxy demo

## test: lint, type-check and the whole test suite (starts/installs the services it needs)
test: $(STAMP) services lint typecheck unit

services:
	@scripts/ensure-services.sh postgres prometheus

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest -p no:cacheprovider $(PYTEST_ARGS)

## serve: the proxy with $(CONFIG) (default config.example.yaml: the local simulator, SQLite)
CONFIG ?= config.example.yaml
serve: $(STAMP)
	@BIN=$(BIN) scripts/serve.sh $(CONFIG)

simulator: $(STAMP)
	$(BIN)/modellix-proxy simulator --port 9100

## bench: proxy overhead and the latency sweep against concurrency (bench/README.md);
## installs wrk with apt-get if missing (root only), starts PostgreSQL if it can
bench: $(STAMP)
	@scripts/ensure-services.sh wrk
	-@scripts/ensure-services.sh --optional postgres
	$(BIN)/python -m bench.run
	$(BIN)/python -m bench.sweep
	$(BIN)/python -m bench.logcost

## chaos: the fault suite against real processes: kill -9, store stalls/resets, upstream faults,
## then a 60 s soak with retention set to seconds, printing the store's size (< ~8 min in all)
SOAK_ENV := $(foreach s,RETENTION__INTERVAL_SECONDS=5 IDEMPOTENCY__TTL_SECONDS=15 \
	RETENTION__TERMINAL_JOBS_SECONDS=20 RETENTION__REFUSALS_SECONDS=15 \
	RETENTION__RESERVATIONS_SECONDS=15,--proxy-env MODELLIX_PROXY_$(s))
chaos: $(STAMP)
	@scripts/ensure-services.sh postgres
	$(BIN)/python -m chaos $(CHAOS_ARGS)
	$(BIN)/python -m chaos --soak 60 $(SOAK_ENV)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .hypothesis *.egg-info
