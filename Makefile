# tocsin: the two commands are `make demo` and `make test`; everything else supports them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

UV_VERSION := 0.13.9
# uv from PATH if present, else a private copy bootstrapped with pip (no curl | sh).
UV := $(shell command -v uv 2>/dev/null || echo $(CURDIR)/.tools/bin/uv)
export UV_PYTHON_DOWNLOADS := never
export UV_PYTHON ?= python3
RUN := $(UV) run --frozen --no-sync
PYTEST := $(RUN) pytest

.PHONY: help venv broker broker-stop topics lint typecheck test test-unit test-integration \
        test-faults faults test-image image demo bench schemas clean peers

help:  ## list targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*##/\t/'

$(CURDIR)/.tools/bin/uv:
	python3 -m venv .tools
	.tools/bin/pip install -q "uv==$(UV_VERSION)"

.venv/.synced: uv.lock pyproject.toml | $(UV)
	$(UV) sync --frozen --all-groups
	@touch $@

venv: .venv/.synced  ## create the virtual environment from uv.lock

broker: venv  ## start the local Kafka broker (fetches jars with Maven once)
	$(RUN) tocsin broker start

broker-stop: venv  ## stop the local Kafka broker
	$(RUN) tocsin broker stop

topics: broker  ## create the catalog's topics
	$(RUN) tocsin topics create

lint: venv  ## ruff
	$(RUN) ruff check .
	$(RUN) ruff format --check .

typecheck: venv  ## mypy (strict)
	$(RUN) mypy

schemas: venv  ## regenerate the exported JSON Schemas
	$(RUN) python -m schemas.export

test-unit: venv  ## the pure tier alone (no broker)
	$(PYTEST) tests/unit -q

test-integration: broker  ## the integration tier against the local broker
	$(PYTEST) tests/integration -q

test-faults: broker  ## the fault tier (kills, outages) as make test runs it
	$(PYTEST) tests/faults -q

test-image: broker peers  ## the container tier alone: build the image, run every worker kind
	$(PYTEST) tests/container -q -s

image: venv peers  ## build localhost/tocsin:latest with podman from the cached Debian base
	@base=$$($(RUN) python -m tests.container.podman base) && \
	podman --runtime runc build --network host --build-arg PYTHON_IMAGE=$$base \
	  --tag localhost/tocsin:latest .

# Debian packages of the real peers the tests use, one group per tier so that one
# missing package does not cost the other tier: Prometheus and Alertmanager (their
# integration tests) with node exporter (the real-Prometheus probe benchmark scrapes
# it), podman with runc and mmdebstrap (the container tier builds the
# image on a Debian base bootstrapped from packages, since no registry is needed),
# PostgreSQL (the store's tests start a throwaway cluster of their own),
# Zabbix 6.0 on PostgreSQL with its PHP frontend, whose API configures it (php-cgi
# satisfies the frontend's PHP without pulling in Apache; the tests serve it with php -S),
# and Chromium (the console's browser test drives it with Playwright, which cannot
# download its own here).
PEERS_PROMETHEUS := prometheus prometheus-alertmanager prometheus-node-exporter
PEERS_POSTGRESQL := postgresql
PEERS_ZABBIX := zabbix-server-pgsql zabbix-agent zabbix-frontend-php php-cli php-cgi \
  php-pgsql postgresql
PEERS_CHROMIUM := chromium
PEERS_CONTAINER := podman runc mmdebstrap uidmap slirp4netns fuse-overlayfs
peers:  ## install real peers for integration tests and the container tier, once
	@SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); updated=; \
	apt_install() { \
	  [ -n "$$updated" ] || { $$SUDO apt-get update -qq && updated=1; } && \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    --no-install-recommends "$$@" >/dev/null; \
	}; \
	{ command -v prometheus && command -v prometheus-alertmanager \
	  && command -v prometheus-node-exporter; } >/dev/null 2>&1 \
	  || apt_install $(PEERS_PROMETHEUS) \
	  || echo "peers: Prometheus/Alertmanager/node exporter not installed; their tests will be skipped"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 \
	  || apt_install $(PEERS_POSTGRESQL) \
	  || echo "peers: PostgreSQL not installed; the store's PostgreSQL tests will be skipped"; \
	command -v chromium >/dev/null 2>&1 \
	  || apt_install $(PEERS_CHROMIUM) \
	  || echo "peers: chromium not installed; the console's browser test will be skipped"; \
	{ command -v podman && command -v runc && command -v mmdebstrap; } >/dev/null 2>&1 \
	  || apt_install $(PEERS_CONTAINER) \
	  || echo "peers: podman/runc/mmdebstrap not installed; the container tier will be skipped"; \
	{ command -v zabbix_server && command -v zabbix_agentd && command -v php \
	  && [ -e /usr/share/zabbix/api_jsonrpc.php ] \
	  && ls /usr/lib/postgresql/*/bin/initdb; } >/dev/null 2>&1 \
	  || apt_install $(PEERS_ZABBIX) \
	  || echo "peers: Zabbix/PostgreSQL not installed; the real Zabbix test will be skipped"

# The integration and fault tiers mostly wait on the broker and on worker processes, so
# test files run in parallel; a file stays on one worker because some start peers on
# fixed ports for the whole module.
TEST_WORKERS ?= 3
test: venv broker peers lint typecheck  ## everything CI runs: lint, types, unit, integration, faults
	@status=0; $(PYTEST) tests -q -p no:cacheprovider --durations=15 \
	  -n $(TEST_WORKERS) --dist loadfile || status=$$?; \
	if [ -n "$$CI" ]; then $(RUN) tocsin broker stop; fi; exit $$status

demo: topics  ## the end-to-end demo on the local broker, then its web console until Ctrl-C
	$(RUN) tocsin demo --console

FAULTS_ARGS ?=
faults: broker  ## the fault soak (kills, outages, storm, hostile input); a table; FAULTS_ARGS=--quick
	$(RUN) python -m benchmarks.faults $(FAULTS_ARGS)

bench: broker peers  ## benchmarks (real Prometheus and PostgreSQL among them); prints tables
	$(RUN) python -m benchmarks

clean:  ## remove the venv and caches (keeps the broker jar cache)
	rm -rf .venv .tools .mypy_cache .ruff_cache .pytest_cache
