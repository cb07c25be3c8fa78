# Two commands do everything on a fresh machine: `make demo` and `make test`.
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c

PROJECT ?= demo-agenttrader
EMULATORS ?= auth,firestore,functions,hosting,pubsub,tasks
ARGS ?=

# The stand-ins' addresses, written once in the emulator project's env file (which the Functions
# emulator loads too): the tests and the scripts read them from the environment.
include functions/.env.demo-agenttrader
export GCLOUD_PROJECT := $(PROJECT)
export ALPACA_API_BASE_URL ALPACA_DATA_BASE_URL SECRET_MANAGER_EMULATOR_HOST

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
