# Pedidos Veloz — the two commands a newcomer needs: `make up` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: up test test-tools lint token migrate bench clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip==26.3
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(STAMP)

## Run the whole platform locally (embedded PostgreSQL unless DATABASE_URL is set).
up: $(STAMP)
	$(BIN)/python -m veloz.devstack up

## Lint, then every test (unit, service, end-to-end) against a real PostgreSQL.
test: $(STAMP) lint test-tools
	$(BIN)/python -m pytest

# Debian packages a test starts (a real Redis for the gateway's shared rate limits).
test-tools:
	@command -v redis-server >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
		&& apt-get update -qq && apt-get install -y -qq --no-install-recommends redis-server \
		>/dev/null; } || echo "redis-server not installed: the shared rate-limit test is skipped"

lint: $(STAMP)
	$(BIN)/ruff check .

## Mint a development token: make token ROLE=admin (or ROLE=customer SUB=alice).
ROLE ?= admin
SUB ?=
token: $(STAMP)
	@JWT_SECRET="$$($(BIN)/python -c 'from veloz.devstack import jwt_secret; print(jwt_secret())')" \
		$(BIN)/python -m gateway.token --role $(ROLE) $(if $(SUB),--sub $(SUB))

## Create and migrate the databases without starting the services.
migrate: $(STAMP)
	$(BIN)/python -m veloz.devstack migrate

## Load the platform with Locust on this machine and print throughput and latency ratios.
bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev,bench]"
	$(BIN)/python loadtest/bench.py $(BENCH_ARGS)
	$(BIN)/python loadtest/sql_per_order.py

clean:
	rm -rf $(VENV) .local .pytest_cache .ruff_cache
