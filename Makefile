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
# (each worker starts its own broker): the trials mostly wait on brokers and clocks, so two halve
# the wall time on 2 cores. PYTEST_WORKERS=0 runs it in one process.
PYTEST_WORKERS ?= 2

PROMETHEUS  := deploy/prometheus/install.sh

.PHONY: help setup prometheus kafka-up kafka-down kafka-fetch run test test-unit test-reliability bench bench-go bench-camel bench-quix lint fmt clean

help:
	@echo "make run    - the demo: local Kafka, TimeBack sandbox, relay, demo traffic, summary"
	@echo "make test   - set up, start what the tests need, run the whole suite"
	@echo "make bench  - the benchmark (bench/results/latest.json)"
	@echo "make lint   - ruff + mypy"
	@echo "setup kafka-up kafka-down test-unit test-reliability clean"

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

run: setup kafka-up
	$(VENV)/bin/relay demo

# The suite starts its own broker on free ports (tests/conftest.py) unless RELAY_KAFKA_BOOTSTRAP
# points at one; fetching first keeps the download out of pytest's timeouts.
test: setup kafka-fetch prometheus
	$(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

test-unit: setup
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

test-reliability: setup kafka-fetch prometheus
	$(PY) -m pytest -m reliability tests/reliability $(PYTEST_ARGS)

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
	rm -rf $(VENV) .kafka-local .kafka-cluster bench/go/bin bench/camel/target bench/quix/.venv .pytest_cache .mypy_cache .ruff_cache .hypothesis build dist *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
