# uythac — the two commands that matter: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
RUN_DIR ?= var/demo

.PHONY: run test lint typecheck tools unit bench bench-width bench-national venv kafka-up kafka-down nginx-up nginx-down pg-up pg-down clean schemas

$(STAMP): pyproject.toml deploy/durable-rules/fixes.patch deploy/durable-rules/build-wheel.sh
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	deploy/durable-rules/build-wheel.sh $(VENV)/wheels $(BIN)/python
	$(BIN)/pip install -q --find-links $(VENV)/wheels 'durable-rules==2.0.28+uythac.1'
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

## run: the local Kafka broker and the worker; a demo province published once; the letter's table; the API
## behind nginx on http://127.0.0.1:8000. The store is a SQLite file; `make run DB=postgres`: the local
## PostgreSQL (deploy/postgres/pgctl)
DB ?= sqlite
run: $(STAMP)
	RUN_DIR=$(RUN_DIR) DB=$(DB) deploy/run.sh

## test: lint, types, then every test (unit, property, integration)
test: $(STAMP) lint typecheck tools
	$(BIN)/pytest -q

## tools: promtool (Debian's prometheus package) checks the alert rules; valgrind watches durable's C engine;
## chromium (Debian's) is the real browser the pages' tests drive with Playwright
tools:
	@missing=""; \
	command -v promtool >/dev/null || missing="$$missing prometheus"; \
	command -v valgrind >/dev/null || missing="$$missing valgrind"; \
	[ -x /usr/bin/chromium ] || missing="$$missing chromium"; \
	if [ -n "$$missing" ]; then \
		echo "installing$$missing (apt-get)"; \
		if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
		$$SUDO apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

lint: $(STAMP)
	$(BIN)/ruff check services rules schemas tests
	$(BIN)/ruff format --check services rules schemas tests

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest -q tests/unit

## bench: throughput, memory and latency benchmarks (prints numbers; not part of `make test`)
bench: $(STAMP)
	$(BIN)/python -m tests.bench.replay_bench
	$(BIN)/python -m tests.bench.worker_bench
	$(BIN)/python -m tests.bench.recovery_bench
	$(BIN)/python -m tests.bench.api_bench
	$(BIN)/python -m tests.bench.pages_bench
	$(BIN)/python -m tests.bench.width_bench

## bench-width: the cost per event at 520, 1 040 and 2 080 communes (BENCH_WIDTHS) of a replay onto SQLite, one
## onto the local PostgreSQL and the worker (BENCH_WIDTH_COMMANDS), each with its report's digest (~1.5 h)
bench-width: $(STAMP)
	$(BIN)/python -m tests.bench.width_bench

## bench-national: a generated country toward VBSP's national size (BENCH_NATIONAL_COMMUNES, default 2000):
## replay throughput and peak RSS, the store's size on disk, the API's p99 on it (tens of minutes)
bench-national: $(STAMP)
	$(BIN)/python -m tests.bench.national_bench

## schemas: regenerate the JSON Schema files in schemas/json (events and output messages) and their examples
## in schemas/examples
schemas: $(STAMP)
	$(BIN)/uythac schemas --out schemas/json --examples schemas/examples

## kafka-up: start the local Kafka broker on 127.0.0.1:19092 (Apache Kafka from Maven Central, data in
## var/kafka; the first run downloads ~45 MB; needs Java 17+ and Maven; see deploy/kafka/kafkactl)
kafka-up:
	deploy/kafka/kafkactl up

## kafka-down: stop the local Kafka broker (its data stays in var/kafka)
kafka-down:
	deploy/kafka/kafkactl down

## nginx-up: start the local reverse proxy on 127.0.0.1:8000 in front of `uythac api` on 127.0.0.1:8001
## (Debian's nginx, installed with apt-get if missing; data and logs in var/nginx; see deploy/nginx/nginxctl)
nginx-up:
	deploy/nginx/nginxctl up

## nginx-down: stop the local reverse proxy
nginx-down:
	deploy/nginx/nginxctl down

## pg-up: start the local PostgreSQL 15 on 127.0.0.1:15432 (Debian's package, installed with apt-get if missing;
## data in var/postgres; a uythac role and database); `deploy/postgres/pgctl url` prints its UYTHAC_DB
pg-up:
	deploy/postgres/pgctl up

## pg-down: stop the local PostgreSQL (its data stays in var/postgres)
pg-down:
	deploy/postgres/pgctl down

clean: kafka-down nginx-down pg-down
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
