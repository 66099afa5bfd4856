# The two commands a newcomer needs are `make run` and `make test`; CI runs `make test`.
# Everything is installed into .venv, so a fresh clone needs only Python 3.11+.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
XAPPS  := $(wildcard xapps/*/pyproject.toml)
# Every package with its version and hashes: requirements.lock is what the image installs (the
# runtime's dependencies), requirements-dev.lock adds the tools (the same versions for both).
LOCK     := requirements.lock
DEV_LOCK := requirements-dev.lock
PIP      := $(BIN)/python -m pip --disable-pip-version-check
UV_COMPILE = $(BIN)/uv pip compile pyproject.toml --universal --python-version 3.11 \
	--generate-hashes --index-url https://pypi.org/simple --custom-compile-command "make lock" -q

.PHONY: run test lint proto docs lock clean system-deps bench image-test node-deps

# Reinstall when a pyproject or the lock changes; editable installs pick up code changes by
# themselves. pip installs exactly the locked files (their hashes are checked), then the
# project and the xApps without dependencies and without build isolation, so the build uses
# the locked setuptools and fetches nothing more. pip's own output is the progress report.
$(STAMP): pyproject.toml $(DEV_LOCK) $(XAPPS)
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed")'
	@echo "make: installing into $(VENV) the $$(grep -c '^[a-z0-9]' $(DEV_LOCK)) packages of $(DEV_LOCK) (about 2 minutes on a first run; later runs skip this), then ric and the example xApps"
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --progress-bar off --require-hashes -r $(DEV_LOCK)
	$(PIP) install --progress-bar off --no-deps --no-build-isolation -e . $(addprefix -e ,$(dir $(XAPPS)))
	@echo "make: $(VENV) is ready"
	@touch $@

## run: the demo: runtime + simulated multi-vendor network + example xApps, live view (Ctrl-C stops)
run: $(STAMP)
	$(BIN)/ric demo

## test: lint, type-check, then the whole test suite
test: lint system-deps node-deps
	$(BIN)/pytest

# The integration tests run real servers and fail (not skip) without them: Prometheus and
# promtool (observability), the mosquitto broker (MQTT bridge), redis-server (the SDL's Redis
# backend), docker-compose (which checks deploy/docker-compose.yml) and node with npm (the
# Node.js xApp of tests/interop). On Debian, whichever is missing is installed with apt, as root
# or through sudo; elsewhere the message says what. Each entry is command:package.
SYSTEM_DEPS := prometheus:prometheus promtool:prometheus mosquitto:mosquitto redis-server:redis-server redis-sentinel:redis-sentinel docker-compose:docker-compose node:nodejs npm:npm

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
	echo "make: installing Debian packages for the integration tests:$$missing (waiting up to 5 minutes for another apt to finish)"; \
	$$sudo apt-get -o DPkg::Lock::Timeout=300 update -qq && \
	DEBIAN_FRONTEND=noninteractive $$sudo apt-get -o DPkg::Lock::Timeout=300 install -y -q \
		--no-install-recommends $$missing

# The Node.js xApp's locked npm packages (tests/interop/node), installed again when the lock
# changed; the stamp lives in node_modules so deleting that folder also reinstalls. No install
# scripts run: the packages are plain JavaScript.
NODE_XAPP  := tests/interop/node
NODE_STAMP := $(NODE_XAPP)/node_modules/.npm-ci-stamp

node-deps: $(NODE_STAMP)

$(NODE_STAMP): $(NODE_XAPP)/package.json $(NODE_XAPP)/package-lock.json | system-deps
	@command -v npm >/dev/null 2>&1 || { echo "make: the Node.js interop test needs node and npm (Debian: apt-get install nodejs npm)" >&2; exit 1; }
	cd $(NODE_XAPP) && npm ci --ignore-scripts --no-audit --no-fund
	@touch $@

## lint: ruff and mypy --strict on the runtime, the example xApps and the tests
lint: $(STAMP)
	$(BIN)/ruff check ric xapps tests proto
	$(BIN)/ruff format --check ric xapps tests proto
	$(BIN)/mypy ric xapps tests

## bench: the performance suite side by side with raw gRPC (not part of `make test`; ~5 min)
# Writes bench-results.json and prints the table the README's Performance section shows.
bench: $(STAMP)
	$(BIN)/ric bench

## image-test: build the image with podman and run it against `ric sim` (not part of `make test`)
# Installs podman (and debootstrap when Docker Hub is unreachable) from apt, so it needs root or
# sudo; a first run takes a few minutes. deploy/image-test.sh --help says what it checks.
image-test: $(STAMP)
	deploy/image-test.sh

## proto: regenerate ric/_proto from proto/ (a test fails when they differ)
proto: $(STAMP)
	$(BIN)/python proto/generate.py

## lock: re-resolve the lock files from pyproject.toml (newest versions on PyPI, with hashes)
# uv resolves against PyPI alone (not this machine's pip configuration) for every platform.
lock: $(STAMP)
	$(PIP) install --progress-bar off uv
	$(UV_COMPILE) -o $(LOCK)
	$(UV_COMPILE) --extra dev -c $(LOCK) -o $(DEV_LOCK)

## docs: regenerate docs/configuration.md from the config models (a test fails when it differs)
docs: $(STAMP)
	$(BIN)/python -m ric.config_reference docs/configuration.md

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
