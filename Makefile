# The two commands a newcomer needs are `make run` and `make test`; CI runs `make test`.
# Everything is installed into .venv, so a fresh clone needs only Python 3.11+.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
XAPPS  := $(wildcard xapps/*/pyproject.toml)

.PHONY: run test lint proto docs clean system-deps bench

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
test: lint system-deps
	$(BIN)/pytest

# The integration tests run real servers and fail (not skip) without them: Prometheus and
# promtool (observability), the mosquitto broker (MQTT bridge), redis-server (the SDL's Redis
# backend) and docker-compose (which checks deploy/docker-compose.yml). On Debian, whichever is
# missing is installed with apt, as root or through sudo; elsewhere the message says what.
# Each entry is command:package.
SYSTEM_DEPS := prometheus:prometheus promtool:prometheus mosquitto:mosquitto redis-server:redis-server docker-compose:docker-compose

system-deps:
	@missing=""; \
	for dep in $(SYSTEM_DEPS); do \
		cmd=$${dep%%:*}; pkg=$${dep#*:}; \
		if command -v $$cmd >/dev/null 2>&1 || [ -x /usr/sbin/$$cmd ]; then continue; fi; \
		case " $$missing " in *" $$pkg "*) ;; *) missing="$$missing $$pkg";; esac; \
	done; \
	[ -z "$$missing" ] && exit 0; \
	if ! command -v apt-get >/dev/null 2>&1; then \
		echo "make: the tests need these installed:$$missing" >&2; exit 1; \
	fi; \
	if [ "$$(id -u)" = 0 ]; then sudo=""; \
	elif command -v sudo >/dev/null 2>&1; then sudo="sudo"; \
	else echo "make: the tests need:$$missing; as root run: apt-get install$$missing" >&2; exit 1; \
	fi; \
	echo "make: installing Debian packages for the integration tests:$$missing"; \
	$$sudo apt-get update -qq && \
	DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq --no-install-recommends $$missing >/dev/null

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

## docs: regenerate docs/configuration.md from the config models (a test fails when it differs)
docs: $(STAMP)
	$(BIN)/python -m ric.config_reference docs/configuration.md

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
