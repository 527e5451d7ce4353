# One command starts the system locally, one runs the tests; both make their own venv.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint bench clean venv

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

## Start the whole system locally (embedded AWS endpoint, app, daemon). Ctrl-C stops it.
run: $(STAMP)
	$(BIN)/opsd run

## The whole test suite, slow end-to-end tests included.
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

## Every benchmark at a tiny size (what CI runs); see benchmarks/README.md for full sizes.
bench: $(STAMP)
	$(BIN)/python -m benchmarks --tiny

clean:
	rm -rf $(VENV) .pytest_cache
