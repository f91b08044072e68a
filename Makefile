# The two commands of the README: `make dev` runs maas locally with demo models,
# `make test` installs everything and runs the whole test suite. Both set up .venv/ first.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8080

.PHONY: dev test setup python3.12 lint typecheck bench synth layers clean prometheus lock audit mutate

setup: $(STAMP) node_modules/.installed layers/build/.built

# The Lambda layers run Python 3.12, and their tests load each layer with it. Debian 12 packages
# no python3.12 and PyPI ships no interpreter, so nothing reachable from here installs one: this
# finds one that runs (on the PATH, else under pyenv, where the machine image has 3.12), records
# it in .venv/python3.12.path for the tests, and otherwise stops and says how to get one.
# `make test` needs it; `make dev` does not (serving on this machine never loads a layer).
PYENV_ROOT ?= $(HOME)/.pyenv
PYTHON312 ?= $(shell for p in "$$(command -v python3.12)" $(wildcard $(PYENV_ROOT)/versions/3.12*/bin/python3.12); do \
	[ -n "$$p" ] && "$$p" -c pass 2>/dev/null && { echo "$$p"; break; }; done)

python3.12: $(STAMP)
	@if [ -z "$(PYTHON312)" ]; then \
		echo "make test: no python3.12 runs here, and the Lambda layer tests need one." >&2; \
		echo "  Install Python 3.12 (pyenv install 3.12, or a python3.12 package), or pass" >&2; \
		echo "  PYTHON312=/path/to/python3.12, then run make test again." >&2; \
		exit 1; \
	fi
	@echo "$(PYTHON312)" > $(VENV)/python3.12.path
	@echo "python3.12 for the layer tests: $(PYTHON312)"

# The Lambda layers (pip --platform, cached): after set-up, `npx cdk synth` needs no network.
layers/build/.built: $(STAMP) layers/build.py layers/*.txt
	$(BIN)/python layers/build.py
	touch layers/build/.built

# The pinned CDK CLI (package-lock.json), for `npx cdk synth|deploy`.
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch node_modules/.installed

EXTRAS := onnx tflite demo local infra exporter convert dev

# torch's CPU build (torch==2.13.0+cpu in the lock) is not on PyPI: it comes from PyTorch's own
# index, or from the wheels on this machine's disk where they lie.
TORCH_WHEELS := $(if $(wildcard /opt/wheels/torch-*),--find-links /opt/wheels,--extra-index-url https://download.pytorch.org/whl/cpu)

# Reinstall only when the dependencies change: the exact, hash-checked versions of
# requirements.lock, then maas itself (its dependencies are all in the lock).
$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --require-hashes $(TORCH_WHEELS) -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(STAMP)

# After changing dependencies in pyproject.toml: pin them again (Python 3.11, Linux x86_64).
lock:
	$(BIN)/pip install --quiet uv
	$(BIN)/uv pip compile pyproject.toml $(addprefix --extra ,$(EXTRAS)) --python-version 3.11 \
		--python-platform x86_64-unknown-linux-gnu --generate-hashes $(TORCH_WHEELS) -o requirements.lock

# Known vulnerabilities in the locked versions (needs the internet; CI runs it).
audit: setup
	$(BIN)/pip-audit -r requirements.lock --require-hashes --disable-pip

# Serving on this machine needs only .venv/: the Lambda layers and the CDK CLI are for the
# targets that synthesize, deploy or test them (`maas dev --deploy` says to run `make setup`).
dev: $(STAMP)
	$(BIN)/maas dev --host $(HOST) --port $(PORT)

test: setup python3.12 lint typecheck prometheus
	$(BIN)/python -m pytest

# A real Prometheus for the exporter's integration test (Debian's package).
prometheus:
	@command -v prometheus >/dev/null || (apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null)

lint: setup
	$(BIN)/ruff check maas functions infra layers tests bench examples
	$(BIN)/ruff format --check maas functions infra layers tests bench examples
	$(BIN)/lint-imports --no-cache

typecheck: setup
	$(BIN)/mypy

layers: $(STAMP)
	$(BIN)/python layers/build.py

synth: setup
	CDK_DISABLE_CLI_TELEMETRY=true npx --no-install cdk synth --no-notices

bench: setup
	$(BIN)/python bench/warm_handler.py

# Mutation testing of the modules that hold promises, each with the tests that cover it; prints the
# share of mutants killed per module (RELIABILITY.md records it). Too slow for `make test`: tens of
# minutes to hours on two cores. One module: `make mutate MODULE=maas/batch`; a random sample of
# its mutants: `make mutate MODULE=maas/registry SAMPLE=400`.
mutate: $(STAMP)
	nice $(BIN)/python bench/mutation_report.py run $(if $(SAMPLE),--sample $(SAMPLE)) $(MODULE)

clean:
	rm -rf $(VENV) .maas .pytest_cache .mypy_cache .ruff_cache node_modules cdk.out layers/build mutants
