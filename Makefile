# One command starts the system locally, one runs the tests; both make their own venv.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint bench clean venv test-deps

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

## Start the whole system locally (embedded AWS endpoint, app, daemon). Ctrl-C stops it.
run: $(STAMP)
	$(BIN)/opsd run

## What the tests use besides the venv: Debian packages (when it can install them) and the
## template linters in .venv-tools.
test-deps:
	bash scripts/install-system-packages.sh
	bash infrastructure/install-lint-tools.sh

## The whole test suite, slow end-to-end tests included.
test: $(STAMP) test-deps
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

## Every benchmark at a tiny size (what CI runs); see benchmarks/README.md for full sizes.
bench: $(STAMP)
	$(BIN)/python -m benchmarks --tiny

clean:
	rm -rf $(VENV) .venv-tools .pytest_cache
