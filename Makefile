# One command starts the system locally, one runs the tests; both make their own venv.
# `make run` installs only what running needs (the app and local mode); `make test` and the
# other targets install everything (the dev extras). The two stamps say which: the dev stamp
# implies the run one, never the reverse. Packages go in with uv (bootstrapped from PyPI into
# the venv by pip), or with pip when uv cannot be had, at the versions constraints.txt pins
# (`make lock`): the same ones in every venv, in CI and in both images.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
UV     := $(BIN)/uv
RUN_STAMP := $(VENV)/.installed-run
DEV_STAMP := $(VENV)/.installed-dev
RUN_EXTRAS := .[app,local]
DEV_EXTRAS := .[dev]
LOCK := constraints.txt
install = if [ -x $(UV) ]; then $(UV) pip install --quiet --python $(BIN)/python -c $(LOCK) -e '$(1)'; \
	else { [ -x $(BIN)/pip ] || $(BIN)/python -m ensurepip --upgrade >/dev/null; } \
		&& $(BIN)/pip install --quiet -c $(LOCK) -e '$(1)'; fi

.PHONY: run test lint bench clean venv test-deps lock

# The venv without pip (ensurepip alone takes longer than uv's whole install); uv goes in with
# the interpreter's own pip, else with the venv's pip made then.
$(BIN)/python:
	@echo "[make] virtual environment $(VENV) and the installer (uv from PyPI)"
	@$(PYTHON) -m venv --without-pip $(VENV)
	@$(PYTHON) -m pip install --quiet --disable-pip-version-check --prefix $(VENV) uv 2>/dev/null \
		|| { $(BIN)/python -m ensurepip --upgrade >/dev/null && $(BIN)/pip install --quiet uv; } \
		|| echo "[make] uv not installed: pip installs instead"

$(RUN_STAMP): pyproject.toml $(LOCK) | $(BIN)/python
	@echo "[make] installing what running needs: $(RUN_EXTRAS)"
	@$(call install,$(RUN_EXTRAS))
	@touch $@

$(DEV_STAMP): pyproject.toml $(LOCK) | $(BIN)/python
	@echo "[make] installing everything, tests and linters included: $(DEV_EXTRAS)"
	@$(call install,$(DEV_EXTRAS))
	@touch $@ $(RUN_STAMP)

venv: $(DEV_STAMP)

## Pin every dependency again after a change to pyproject.toml; pins that still fit are kept,
## `make lock LOCK_FLAGS=--upgrade` takes the newest releases. One file for every platform.
lock: | $(BIN)/python
	@[ -x $(UV) ] || { echo "make lock: needs uv in $(VENV) (pip cannot compile a lock)" >&2; exit 1; }
	$(UV) pip compile pyproject.toml --extra dev --universal --python-version 3.11 \
		--custom-compile-command 'make lock' --quiet $(LOCK_FLAGS) -o $(LOCK)

## Start the whole system locally (embedded AWS endpoint, app, daemon). Ctrl-C stops it.
run: $(RUN_STAMP)
	@echo "[make] starting the embedded AWS endpoint, the app and the daemon (opsd run)"
	@$(BIN)/opsd run

## What the tests use besides the venv: Debian packages (when it can install them) and the
## template linters in .venv-tools.
test-deps:
	bash scripts/install-system-packages.sh
	bash infrastructure/install-lint-tools.sh

## The whole test suite, slow end-to-end tests included.
test: $(DEV_STAMP) test-deps
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

lint: $(DEV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

## Every benchmark at a tiny size (what CI runs); see benchmarks/README.md for full sizes.
bench: $(DEV_STAMP)
	$(BIN)/python -m benchmarks --tiny

clean:
	rm -rf $(VENV) .venv-tools .pytest_cache
