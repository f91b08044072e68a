# The two commands of the README: `make dev` runs maas locally with demo models,
# `make test` installs everything and runs the whole test suite. Both set up .venv/ first.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8080

.PHONY: dev test setup lint typecheck bench clean

setup: $(STAMP)

# Reinstall only when the project's dependencies change.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[onnx,tflite,demo,local,dev]'
	touch $(STAMP)

dev: setup
	$(BIN)/maas dev --host $(HOST) --port $(PORT)

test: setup lint typecheck
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/ruff check maas functions tests bench examples
	$(BIN)/ruff format --check maas functions tests bench examples

typecheck: setup
	$(BIN)/mypy

bench: setup
	$(BIN)/python bench/warm_handler.py

clean:
	rm -rf $(VENV) .maas .pytest_cache .mypy_cache .ruff_cache
