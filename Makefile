.DEFAULT_GOAL := help
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

## help: list the targets
help:
	@grep -E '^## ' $(MAKEFILE_LIST) | sed 's/^## /  /'

$(STAMP): pyproject.toml requirements-lock.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c requirements-lock.txt -e '.[dev]'
	touch $(STAMP)

## install: create .venv and install the package with its dev tools
install: $(STAMP)

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

## bench: run every benchmark script
bench: $(STAMP)
	for b in benchmarks/*.py; do $(BIN)/python $$b || exit 1; done

.PHONY: help install demo test lint mlflow-ui bench
