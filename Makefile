# The two commands a newcomer needs are `make run` and `make test`; CI runs `make test`.
# Everything is installed into .venv, so a fresh clone needs only Python 3.11+.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
XAPPS  := $(wildcard xapps/*/pyproject.toml)

.PHONY: run test lint proto clean

# Reinstall when a pyproject changes; editable installs pick up code changes by themselves.
$(STAMP): pyproject.toml $(XAPPS)
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]' $(addprefix -e ,$(dir $(XAPPS)))
	@touch $@

## run: the demo: runtime + simulated multi-vendor network + example xApps, live view (Ctrl-C stops)
run: $(STAMP)
	$(BIN)/ric demo

## test: lint, type-check, then the whole test suite
test: lint
	$(BIN)/pytest

## lint: ruff and mypy --strict on the runtime and the example xApps
lint: $(STAMP)
	$(BIN)/ruff check ric xapps tests proto
	$(BIN)/ruff format --check ric xapps tests proto
	$(BIN)/mypy ric xapps

## proto: regenerate ric/_proto from proto/ (a test fails when they differ)
proto: $(STAMP)
	$(BIN)/python proto/generate.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
