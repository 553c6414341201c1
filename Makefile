# timeback-relay: every set-up step lives here (or in scripts it calls).
# The two commands: `make run` (the demo on a local Kafka + sandbox) and `make test`.

PYTHON      ?= python3
VENV        ?= .venv
PY          := $(VENV)/bin/python
KAFKA       := deploy/local/kafka/kafka-local.sh
# KAFKA_MODE=cluster: 3 secured, replicated brokers (SASL_SSL/SCRAM, mTLS, ACLs; kafka-cluster.sh)
KAFKA_MODE  ?= single
CLUSTER     := deploy/local/kafka/kafka-cluster.sh
STAMP       := $(VENV)/.installed
PYTEST_ARGS ?=
# make test runs the suite on this many pytest-xdist workers, a test file per worker at a time
# (each worker starts its own broker; the secured cluster's files are one unit, so one cluster),
# longest files first (tests/scheduling.py; --no-loadscope-reorder keeps that order): the trials
# mostly wait on brokers and clocks (a run uses under half of 2 cores), so three workers on 2 cores:
# a fresh clone's make test took 11 min 19 s with three (pytest 635 s) against 15 min 53 s with
# two (907 s), both green. PYTEST_WORKERS=0 runs it in one process.
PYTEST_WORKERS ?= 3

PROMETHEUS  := deploy/prometheus/install.sh
# Apicurio Registry 2.3.1 with the Confluent API (deploy/local/registry); REGISTRY=1 make run uses it
REGISTRY_SH := deploy/local/registry/registry-local.sh
REGISTRY    ?= 0
NODE_PRODUCER := examples/node-producer

.PHONY: help setup prometheus kafka-up kafka-down kafka-fetch registry-fetch registry-up registry-down node-producer run test test-unit test-reliability bench bench-go bench-camel bench-quix lint fmt clean

help:
	@echo "make run    - the demo: local Kafka, TimeBack sandbox, relay, demo traffic, summary"
	@echo "make test   - set up, start what the tests need, run the whole suite"
	@echo "make bench  - the benchmark (bench/results/latest.json)"
	@echo "make lint   - ruff + mypy"
	@echo "make run REGISTRY=1 - the demo with Confluent framing through a local Schema Registry"
	@echo "setup kafka-up kafka-down registry-up registry-down test-unit test-reliability clean"

setup: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required (set PYTHON=...)")'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev,bench]'
	@touch $(STAMP)

kafka-fetch:
	$(KAFKA) fetch

# prometheus + promtool (Debian package) for the dashboard/alert tests; no-op when present
prometheus:
	$(PROMETHEUS)

ifeq ($(KAFKA_MODE),cluster)
KAFKA_CTL := $(CLUSTER)
KAFKA_UP_NEEDS := setup  # cluster_admin.py (topics, ACLs) runs on the venv's confluent-kafka
else ifeq ($(KAFKA_MODE),single)
KAFKA_CTL := $(KAFKA)
else
$(error KAFKA_MODE must be single or cluster, not $(KAFKA_MODE))
endif

kafka-up: $(KAFKA_UP_NEEDS)
	$(KAFKA_CTL) start

kafka-down:
	$(KAFKA_CTL) stop

# The Schema Registry: built once from Maven Central jars (cached under ~/.cache/timeback-relay)
registry-fetch:
	$(REGISTRY_SH) fetch

registry-up:
	$(REGISTRY_SH) start

registry-down:
	$(REGISTRY_SH) stop

# The Node.js producer example's packages (npm, from its package-lock.json); skipped without npm
node-producer: $(NODE_PRODUCER)/node_modules/.package-lock.json

$(NODE_PRODUCER)/node_modules/.package-lock.json: $(NODE_PRODUCER)/package-lock.json
	@if command -v npm >/dev/null; then cd $(NODE_PRODUCER) && npm ci --ignore-scripts --no-audit --no-fund; \
	else echo "npm not found: the Node.js producer test will be skipped"; fi

ifeq ($(REGISTRY),1)
run: setup kafka-up registry-up
	$(VENV)/bin/relay demo --registry-url "$$($(REGISTRY_SH) url)"
else
run: setup kafka-up
	$(VENV)/bin/relay demo
endif

# The suite starts its own broker on free ports (tests/conftest.py) unless RELAY_KAFKA_BOOTSTRAP
# points at one, and its own Schema Registry (tests/registry.py); fetching and building first keeps
# the downloads out of pytest's timeouts.
# bench-quix: the S9 peer's own virtualenv, so that its tests in tests/unit/test_bench.py run here
# rather than skip
test: setup kafka-fetch registry-fetch node-producer bench-quix prometheus
	$(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder $(PYTEST_ARGS)

test-unit: setup
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

# RELAY_LONG_TRIALS=1: also the variants `make test` leaves out to stay under 15 minutes
test-reliability: setup kafka-fetch registry-fetch prometheus
	RELAY_LONG_TRIALS=1 $(PY) -m pytest -m reliability tests/reliability $(PYTEST_ARGS)

# bench/go: the compiled sink, load client and peer relay of S6-S8 (go build, Go module proxy)
bench-go: setup
	$(PY) -m bench.gobuild

# bench/camel: S7's Apache Camel 4.14 peer route (mvn package, Maven Central; JDK 17+)
bench-camel: setup
	$(PY) -m bench.camelbuild

# bench/quix: S9's Quix Streams 3.28 peer in its own virtualenv, bench/quix/.venv (pip, PyPI):
# quixstreams pins confluent-kafka < 2.13, which the relay's environment does not share
bench-quix: setup
	$(PY) -m bench.quixbuild

bench: setup kafka-fetch bench-go bench-camel bench-quix
	$(PY) -m bench

lint: setup
	$(VENV)/bin/ruff check relay tests bench deploy
	$(VENV)/bin/ruff format --check relay tests bench deploy
	$(VENV)/bin/mypy

fmt: setup
	$(VENV)/bin/ruff check --fix relay tests bench deploy
	$(VENV)/bin/ruff format relay tests bench deploy

clean:
	-$(KAFKA) stop
	-$(CLUSTER) stop
	-$(REGISTRY_SH) stop
	rm -rf $(VENV) .kafka-local .registry-local deploy/local/registry/target $(NODE_PRODUCER)/node_modules .kafka-cluster bench/go/bin bench/camel/target bench/quix/.venv .pytest_cache .mypy_cache .ruff_cache .hypothesis build dist *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
