# Two commands do everything on a fresh machine: `make demo` and `make test`.
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c

PROJECT ?= demo-agenttrader
EMULATORS ?= auth,firestore,functions,pubsub,tasks
ARGS ?=

# The stand-ins' addresses (localdev/__init__.py): the functions runtime, the tests and the
# scripts all read these.
export GCLOUD_PROJECT := $(PROJECT)
export ALPACA_API_BASE_URL := http://127.0.0.1:9911
export ALPACA_DATA_BASE_URL := http://127.0.0.1:9911
export SECRET_MANAGER_EMULATOR_HOST := 127.0.0.1:9912

ENV := source .cache/env.sh &&
EXEC := firebase emulators:exec --project $(PROJECT) --only $(EMULATORS)

.PHONY: bootstrap lint test demo bench

bootstrap:
	@dev/bootstrap.sh

lint: bootstrap
	@$(ENV) ruff check . && ruff format --check . && mypy

test: bootstrap lint
	@$(ENV) $(EXEC) "python -m pytest $(ARGS)"

demo: bootstrap
	@$(ENV) $(EXEC) "python scripts/demo.py $(ARGS)"

bench: bootstrap
	@$(ENV) firebase emulators:exec --project $(PROJECT) --only firestore \
		"python scripts/bench.py $(ARGS)"
