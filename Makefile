.DEFAULT_GOAL := help
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

## help: list the targets
help:
	@grep -E '^## ' $(MAKEFILE_LIST) | sed 's/^## /  /'

UV_VERSION := 0.13.9
# uv reads no pip config: hand it pip's extra indexes and wheel folders, so both install from the same registry.
UV_ENV = UV_EXTRA_INDEX_URL="$$($(PYTHON) -m pip config get global.extra-index-url 2>/dev/null)" \
	UV_FIND_LINKS="$$($(PYTHON) -m pip config get global.find-links 2>/dev/null)" UV_INDEX_STRATEGY=unsafe-best-match

$(STAMP): pyproject.toml requirements-lock.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet uv==$(UV_VERSION)
	$(UV_ENV) $(BIN)/uv pip install --quiet --python $(BIN)/python --verify-hashes -c requirements-lock.txt -e '.[dev]'
	touch $(STAMP)

## install: create .venv and install the package with its dev tools (uv, the lock's pins and hashes)
install: $(STAMP)

## lock: regenerate requirements-lock.txt from pyproject.toml (pins and hashes for every supported Python)
lock:
	$(BIN)/uv pip compile pyproject.toml --extra dev --extra report --universal --python-version 3.11 \
		--generate-hashes --no-config -o requirements-lock.txt

## demo: run the whole loop on the embedded synthetic default in a scratch copy (.demo/)
demo: $(STAMP)
	$(BIN)/mlops demo --workdir .demo

## test: run the test suite
test: $(STAMP)
	@$(BIN)/python -m pytest -n 2 -q; status=$$?; \
	if [ $$status -eq 5 ]; then echo "pytest collected no tests: failing on purpose" >&2; exit 1; fi; exit $$status

## lint: ruff, pre-commit hooks
lint: $(STAMP)
	$(BIN)/pre-commit run --all-files

## mlflow-ui: open the MLflow UI on 127.0.0.1:5000 over the local sqlite store
mlflow-ui: $(STAMP)
	MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false $(BIN)/mlflow ui --host 127.0.0.1 --port 5000 --backend-store-uri sqlite:///.mlflow/mlflow.db

## services: start PostgreSQL and an mlflow server on it on 127.0.0.1 (.services/; docs/team-backend.md); stop: make services-stop
services: $(STAMP)
	$(BIN)/python -m mlops.services start --dir .services

## services-stop: stop what `make services` started (its data stays in .services/)
services-stop: $(STAMP)
	$(BIN)/python -m mlops.services stop --dir .services

## bench: run every benchmark script
bench: $(STAMP)
	for b in benchmarks/*.py; do $(BIN)/python $$b || exit 1; done

.PHONY: help install lock demo test lint mlflow-ui bench services services-stop
