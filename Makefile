# One command starts the system locally, one runs the tests; both make their own venv.
# `make run` installs only what running needs (the app and local mode); `make test` and the
# other targets install everything (the dev extras). The two stamps say which: the dev stamp
# implies the run one, never the reverse. Packages go in with uv (bootstrapped from PyPI into
# the venv by pip), or with pip when uv cannot be had.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
UV     := $(BIN)/uv
RUN_STAMP := $(VENV)/.installed-run
DEV_STAMP := $(VENV)/.installed-dev
RUN_EXTRAS := .[app,local]
DEV_EXTRAS := .[dev]
install = if [ -x $(UV) ]; then $(UV) pip install --quiet --python $(BIN)/python -e '$(1)'; \
	else { [ -x $(BIN)/pip ] || $(BIN)/python -m ensurepip --upgrade >/dev/null; } \
		&& $(BIN)/pip install --quiet -e '$(1)'; fi

.PHONY: run test lint bench clean venv test-deps

# The venv without pip (ensurepip alone takes longer than uv's whole install); uv goes in with
# the interpreter's own pip, else with the venv's pip made then.
$(BIN)/python:
	@echo "[make] virtual environment $(VENV) and the installer (uv from PyPI)"
	@$(PYTHON) -m venv --without-pip $(VENV)
	@$(PYTHON) -m pip install --quiet --disable-pip-version-check --prefix $(VENV) uv 2>/dev/null \
		|| { $(BIN)/python -m ensurepip --upgrade >/dev/null && $(BIN)/pip install --quiet uv; } \
		|| echo "[make] uv not installed: pip installs instead"

$(RUN_STAMP): pyproject.toml | $(BIN)/python
	@echo "[make] installing what running needs: $(RUN_EXTRAS)"
	@$(call install,$(RUN_EXTRAS))
	@touch $@

$(DEV_STAMP): pyproject.toml | $(BIN)/python
	@echo "[make] installing everything, tests and linters included: $(DEV_EXTRAS)"
	@$(call install,$(DEV_EXTRAS))
	@touch $@ $(RUN_STAMP)

venv: $(DEV_STAMP)

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
