# fraudmesh developer entry points. `make run` and `make test` work on a bare Debian machine.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STACK_DIR := $(CURDIR)/.stack
STAMPS := $(STACK_DIR)/stamps
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
APT_PACKAGES := redis-server redis-tools
APT_PACKAGES += espeak-ng flite  # audio: TTS for test and benchmark audio (generated at test time)
# switch front interop: SIPp as the UAC and load generator, Kamailio as the proxy in front (and its
# secsipid module as an independent STIR/SHAKEN signer; http_client and json for the HTTP variant)
APT_PACKAGES += sip-tester kamailio kamailio-utils-modules kamailio-secsipid-modules kamailio-json-modules

# The local stack's ports (read by deploy/local/stack.sh), and the matching service settings.
export KAFKA_PORT ?= 19092
export KAFKA_CONTROLLER_PORT ?= 19093
export REDIS_PORT ?= 16379
export FRAUDMESH_KAFKA_BOOTSTRAP ?= 127.0.0.1:$(KAFKA_PORT)
export FRAUDMESH_REDIS_URL ?= redis://127.0.0.1:$(REDIS_PORT)/0
export FRAUDMESH_PSEUDONYM_KEY_FILE ?= $(STACK_DIR)/secrets/pseudonym.key
export FRAUDMESH_TENANT_REGIONS ?= demo-cn=CN,demo-us=US

.PHONY: help run model model-evaluate model-default fuzz smoke sip-smoke bench-switchfront bench-loadtest bench-reputation bench-origination bench-decision bench-scoring bench-audio test test-unit test-integration test-chaos deps system-deps venv jars up down status topics \
        proto proto-check lint clean-data \
        operate-check helm-lint helm-render dashboards dashboards-check rules-test docker-lint

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-17s %s\n", $$1, $$2}'

SCENARIO ?= ci

run: up ## The main job: simulate $(SCENARIO) traffic, replay it through the mesh, verify, report
	$(PY) -m loadtest run --scenario $(SCENARIO)

MODEL_LEAD_IN_HOURS ?= 18

model: up ## Train the scoring model on $(SCENARIO) traffic (after $(MODEL_LEAD_IN_HOURS) h of history): generate, point-in-time features, train
	test -f data/$(SCENARIO)-model/manifest.json || $(PY) -m loadtest generate --scenario $(SCENARIO) --lead-in-hours $(MODEL_LEAD_IN_HOURS) --out data/$(SCENARIO)-model
	$(PY) -m training build-features --dataset data/$(SCENARIO)-model --out data/$(SCENARIO)-model/features.npz
	$(PY) -m training train --features data/$(SCENARIO)-model/features.npz --out models/$(SCENARIO)

model-evaluate: model ## Evaluate models/$(SCENARIO) on the holdout scenario's own window (another operator's day, never tuned on)
	test -f data/holdout-eval/manifest.json || $(PY) -m loadtest generate --scenario holdout --lead-in-hours $(MODEL_LEAD_IN_HOURS) --out data/holdout-eval
	test -f data/holdout-eval/features.npz || $(PY) -m training build-features --dataset data/holdout-eval --out data/holdout-eval/features.npz
	$(PY) -m training evaluate --model models/$(SCENARIO) --features data/holdout-eval/features.npz

model-default: ## Retrain the default model shipped in services/scoring/default/ from the default scenario
	$(MAKE) model SCENARIO=default
	$(PY) -m training ship --model models/default --out services/scoring/default

FUZZ_RUNS ?= 1000000
fuzz: up ## atheris, FUZZ_RUNS cases per target: Identity parser, Verifier.verify, Verify handler on the local Redis, SIP parser (1M each took 63 s / 705 s / 1,057 s here: fuzz/README.md)
	mkdir -p $(STACK_DIR)/fuzz/identity_header $(STACK_DIR)/fuzz/verifier $(STACK_DIR)/fuzz/verify_handler
	$(PY) -m fuzz.identity_header -runs=$(FUZZ_RUNS) -artifact_prefix=$(STACK_DIR)/fuzz/ $(STACK_DIR)/fuzz/identity_header fuzz/corpus/identity_header
	$(PY) -m fuzz.verifier -runs=$(FUZZ_RUNS) -artifact_prefix=$(STACK_DIR)/fuzz/ $(STACK_DIR)/fuzz/verifier fuzz/corpus/calls
	FRAUDMESH_FUZZ_REDIS_URL=redis://127.0.0.1:$(REDIS_PORT)/14 $(PY) -m fuzz.verify_handler -runs=$(FUZZ_RUNS) -artifact_prefix=$(STACK_DIR)/fuzz/ $(STACK_DIR)/fuzz/verify_handler fuzz/corpus/calls
	mkdir -p $(STACK_DIR)/fuzz/sip_message
	$(PY) -m fuzz.sip_message -runs=$(FUZZ_RUNS) -artifact_prefix=$(STACK_DIR)/fuzz/ $(STACK_DIR)/fuzz/sip_message fuzz/corpus/sip_message

smoke: up ## A quick pipeline check: setups → Kafka → reputation → Redis, duplicates and poison records
	$(PY) -m loadtest.smoke

bench-loadtest: up ## Benchmark: generation and replay rates beside bare ES256 and a raw producer
	$(PY) -m bench.simulator --scenario $(SCENARIO)

bench-reputation: up ## Benchmark: a reputation worker's events/s and freshness beside a raw consumer
	$(PY) -m bench.reputation

bench-origination: up ## Benchmark: warm PASSporT verify beside bare ES256, Verify RPC beside an empty grpc.aio server
	$(PY) -m bench.origination

bench-decision: up ## Benchmark: Decide saturation and p50/p99 at 50%/90% beside an empty grpc.aio server, 1 vs 2 processes (+ ghz)
	bash deploy/tools/install.sh ghz >/dev/null
	$(PY) -m bench.decision

bench-switchfront: up ## Benchmark: SIPp -> switch front -> Decide at half of Decide's saturation, beside gRPC Decide and SIPp -> a trivial 302 responder
	$(PY) -m bench.switchfront

sip-smoke: up ## Decision and the switch front, SIPp scenarios (and Kamailio in front when installed): one line per scenario
	$(PY) -m loadtest.sipsmoke

bench-scoring: venv ## Benchmark: Numba scoring beside LightGBM and treelite on the same models
	$(PY) -m bench.scoring

bench-audio: up ## Evaluation: campaign recall at fixed false-alarm rates (threshold sweep), bot accuracy, synthetic-voice EER per held-out engine, speed
	$(PY) -m pip install -q -c constraints.txt -e '.[audio-eval]'
	$(PY) -m bench.audio

test: up ## Unit and integration tests against the real local Kafka and Redis (not the chaos drills)
	$(PY) -m pytest tests -m "not chaos"

test-unit: venv ## Unit tests only (no network, no SIP peers)
	$(PY) -m pytest tests -m "not integration and not interop"

test-chaos: up ## Chaos drills, counts exact: Redis frozen, broker killed, worker killed 20 times, a rebalance
	$(PY) -m pytest tests -m chaos -s

deps: system-deps venv jars ## Install everything: Debian packages, Python venv, Kafka jars

system-deps: $(STAMPS)/system-deps
$(STAMPS)/system-deps: Makefile
	@missing="$(APT_PACKAGES)"; \
	command -v java >/dev/null || missing="$$missing openjdk-17-jre-headless"; \
	command -v mvn >/dev/null || missing="$$missing maven"; \
	if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null \
	   || ! command -v java >/dev/null || ! command -v mvn >/dev/null \
	   || ! dpkg-query -W $(APT_PACKAGES) >/dev/null 2>&1; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq; \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi
	@mkdir -p $(@D) && touch $@

venv: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "fraudmesh needs Python 3.11")'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -c constraints.txt -e '.[dev]'
	$(PY) -m pip check
	@touch $@

jars: system-deps ## Fetch the Apache Kafka jars from Maven Central (cached in .stack/kafka/libs)
	bash deploy/local/stack.sh jars

$(STACK_DIR)/secrets/pseudonym.key: | venv
	@mkdir -p $(@D) && umask 077 && $(PY) -c 'import secrets; print(secrets.token_hex(32))' > $@
	@echo "generated a local-only pseudonym key in $@"

up: deps $(STACK_DIR)/secrets/pseudonym.key ## Start Kafka and Redis on 127.0.0.1 and create the topics
	bash deploy/local/stack.sh up
	$(PY) -m services.common.topics --bootstrap $(FRAUDMESH_KAFKA_BOOTSTRAP)

down: ## Stop the Kafka and Redis that `make up` started
	bash deploy/local/stack.sh down

status: ## Show whether the local stack runs, where, and where its data and logs are
	bash deploy/local/stack.sh status

topics: venv ## Create or reconcile the topics declared in services/common/topics.py
	$(PY) -m services.common.topics --bootstrap $(FRAUDMESH_KAFKA_BOOTSTRAP)

proto: venv ## Regenerate the Python code for protos/ (pinned grpcio-tools)
	bash protos/generate.sh

proto-check: venv ## Fail when the generated code in protos/ is stale
	bash protos/generate.sh --check

lint: venv ## ruff and mypy --strict
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy services training loadtest tests bench fuzz charts deploy/helm/validate.py

operate-check: helm-lint dashboards-check rules-test docker-lint ## Chart, dashboards, alert rules and Dockerfile checks (no cluster needed)

helm-lint: venv ## helm lint --strict + render every ci/ values file, validate offline against Kubernetes 1.29/1.37 schemas, diff the rendered example
	PY=$(PY) bash deploy/helm/check.sh

helm-render: venv ## Re-render deploy/helm/rendered/default.yaml after a chart change
	PY=$(PY) bash deploy/helm/check.sh --update

dashboards: venv ## Regenerate charts/dashboards/*.json from the builder in charts/grafana
	$(PY) -m charts.grafana

dashboards-check: venv ## Fail when charts/dashboards/*.json is stale
	$(PY) -m charts.grafana --check

rules-test: ## promtool check + unit-test the alert rules in charts/alerts
	@promtool=$$(bash deploy/tools/install.sh promtool); \
	$$promtool check rules charts/alerts/*.yaml && $$promtool test rules charts/alerts/tests/*_test.yaml

docker-lint: venv ## hadolint the Dockerfile in deploy/docker (no Docker engine needed)
	$(VENV)/bin/hadolint deploy/docker/Dockerfile

clean-data: down ## Stop the stack and delete its data (Kafka log dirs, Redis), keeping the jars
	rm -rf $(STACK_DIR)/kafka/data $(STACK_DIR)/redis
