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
# Runs a command inside the emulators, in a process group that is stopped when it ends (also on
# failure or Ctrl-C); the emulators' own logs go to a file whose path it prints.
EXEC := dev/emulators.sh

.PHONY: bootstrap lint test demo bench deploy

bootstrap:
	@dev/bootstrap.sh

lint: bootstrap
	@$(ENV) ruff check . && ruff format --check . && mypy && \
	  { lint-imports --no-cache >.cache/lint-imports.log || { cat .cache/lint-imports.log; false; }; } && \
	  echo "layers: every import runs downwards (pyproject.toml's import-linter contracts)"

test: bootstrap lint
	@$(ENV) $(EXEC) $(EMULATORS) "python -m pytest $(ARGS)"

demo: bootstrap
	@$(ENV) $(EXEC) $(EMULATORS) "python scripts/demo.py $(ARGS)"

bench: bootstrap
	@$(ENV) $(EXEC) firestore,functions,pubsub,tasks "python scripts/bench.py $(ARGS)"

# Deploy to a real Firebase project: a preflight that needs no cloud, then `firebase deploy`.
deploy: bootstrap
	@$(ENV) python scripts/page_settings.py --project $(PROJECT)
	@$(ENV) python scripts/preflight.py --project $(PROJECT)
	@$(ENV) python scripts/iam_plan.py --project $(PROJECT) --apply \
	  --number "$$(gcloud projects describe $(PROJECT) --format='value(projectNumber)')" \
	  --clock-secret "$$(grep -hs '^ALPACA_CLOCK_KEYS_SECRET=' functions/.env functions/.env.$(PROJECT) | tail -1 | cut -d= -f2-)"
	@$(ENV) python scripts/iam_plan.py --project $(PROJECT) --check-policy
	@$(ENV) firebase deploy --project $(PROJECT) --config firebase.deploy.json \
	  --only functions,firestore,hosting
	@$(ENV) python scripts/backups.py --project $(PROJECT) --apply
	@$(ENV) python scripts/alerts.py --project $(PROJECT) --apply
