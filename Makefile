# The two commands a newcomer needs are `make run` and `make test`; CI runs `make test`.
# Everything is installed into .venv, so a fresh clone needs only Python 3.11+.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
XAPPS  := $(wildcard xapps/*/pyproject.toml)

.PHONY: run test lint proto clean prometheus mosquitto bench

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
test: lint prometheus mosquitto
	$(BIN)/pytest

# The observability tests run a real Prometheus server and promtool, and fail (not skip)
# without them, so a Debian machine gets the prometheus package here when either is missing.
# Only as root or through sudo; elsewhere the message says what to install.
prometheus:
	@if command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; then exit 0; fi; \
	if ! command -v apt-get >/dev/null 2>&1; then \
		echo "make: the tests need prometheus and promtool on PATH; install Prometheus 2.x" >&2; exit 1; \
	fi; \
	if [ "$$(id -u)" = 0 ]; then sudo=""; \
	elif command -v sudo >/dev/null 2>&1; then sudo="sudo"; \
	else echo "make: the tests need prometheus and promtool; as root run: apt-get install prometheus" >&2; exit 1; \
	fi; \
	echo "make: installing Debian's prometheus package (prometheus, promtool) for the tests"; \
	$$sudo apt-get update -qq && \
	DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq --no-install-recommends prometheus >/dev/null

# The MQTT bridge's integration tests start a real mosquitto broker and fail (not skip) without
# it, so a Debian machine gets the mosquitto package here when it is missing (root or sudo).
mosquitto:
	@if command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ]; then exit 0; fi; \
	if ! command -v apt-get >/dev/null 2>&1; then \
		echo "make: the tests need the mosquitto MQTT broker on PATH or in /usr/sbin" >&2; exit 1; \
	fi; \
	if [ "$$(id -u)" = 0 ]; then sudo=""; \
	elif command -v sudo >/dev/null 2>&1; then sudo="sudo"; \
	else echo "make: the tests need mosquitto; as root run: apt-get install mosquitto" >&2; exit 1; \
	fi; \
	echo "make: installing Debian's mosquitto package (the MQTT broker) for the tests"; \
	$$sudo apt-get update -qq && \
	DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq --no-install-recommends mosquitto >/dev/null

## lint: ruff and mypy --strict on the runtime and the example xApps
lint: $(STAMP)
	$(BIN)/ruff check ric xapps tests proto
	$(BIN)/ruff format --check ric xapps tests proto
	$(BIN)/mypy ric xapps

## bench: the performance suite side by side with raw gRPC (not part of `make test`; ~4 min)
# Writes bench-results.json and prints the table the README's Performance section shows.
bench: $(STAMP)
	$(BIN)/ric bench

## proto: regenerate ric/_proto from proto/ (a test fails when they differ)
proto: $(STAMP)
	$(BIN)/python proto/generate.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
