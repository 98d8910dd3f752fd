# conveyor: `make demo` runs the main job, `make test` runs lint, types and the whole suite.
# Both set everything up first, from a fresh clone on a machine with Python 3.11 and make.

PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
CREATED := $(VENV)/.created
# What the demo needs (conveyor and the examples' packages), and everything the tests need besides.
DEMO_STAMP := $(VENV)/.installed-demo
DEV_STAMP := $(VENV)/.installed-dev
# The wheels of conveyor's runtime dependencies, for the test that installs the built wheel into a fresh virtual
# environment without reaching a package index (tests/deploy/test_package.py).
WHEELHOUSE := build/wheelhouse
WHEELHOUSE_STAMP := $(WHEELHOUSE)/.made

.PHONY: demo test lint typecheck pytest system-packages bench install clean

$(CREATED):
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "error: $(PYTHON) not found; install Python 3.11 or run 'make PYTHON=python3 ...'"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	touch $(CREATED)

$(DEMO_STAMP): pyproject.toml | $(CREATED)
	$(BIN)/pip install --quiet -e '.[examples]'
	touch $(DEMO_STAMP)

$(DEV_STAMP): pyproject.toml | $(CREATED)
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(DEV_STAMP) $(DEMO_STAMP)

install: $(DEV_STAMP)

$(WHEELHOUSE_STAMP): pyproject.toml | $(DEV_STAMP)
	$(BIN)/pip wheel --quiet --wheel-dir $(WHEELHOUSE) .
	touch $(WHEELHOUSE_STAMP)

# The image pipeline example under `conveyor up`: a web tier, worker instances, the queue, autoscaling.
# It installs only what the demo needs; `make test` adds the development tools.
demo: $(DEMO_STAMP)
	@echo "Starting the image pipeline. When it is up, in another terminal:"
	@echo "  curl -X POST http://127.0.0.1:8000/sample      # enqueue a resize task (or open http://127.0.0.1:8000)"
	@echo "  $(BIN)/conveyor status                        # queue, instances, scaling; also: events, health, logs"
	@echo "  open http://127.0.0.1:9325                       # the web console (or: $(BIN)/conveyor console)"
	@echo "Thumbnails appear in examples/image-pipeline/data/thumbs/. Ctrl-C drains and stops."
	$(BIN)/conveyor up examples/image-pipeline

lint: $(DEV_STAMP)
	$(BIN)/ruff check src tests bench examples
	$(BIN)/ruff format --check src tests bench examples

typecheck: $(DEV_STAMP)
	$(BIN)/mypy

# Debian's packages the tests need: chromium (the console's browser tests drive it with Playwright; no browser is
# downloaded), postgresql (the postgres store's tests run a cluster of their own, never the system's service) and
# iproute2 (the several-hosts tests make their hosts with `ip netns`, as root) and systemd (the units in deploy/systemd
# are checked with systemd-analyze verify, systemd-sysusers and systemd-tmpfiles; nothing needs to be running).
# As root (CI) the missing ones are installed with one apt-get update; otherwise a note says which tests will skip
# (outside CI only: under CI they fail).
system-packages:
	@missing=""; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null || missing="$$missing postgresql"; \
	command -v ip >/dev/null || [ -x /usr/sbin/ip ] || [ -x /sbin/ip ] || missing="$$missing iproute2"; \
	command -v systemd-analyze >/dev/null || [ -x /usr/bin/systemd-analyze ] || missing="$$missing systemd"; \
	if [ -z "$$missing" ]; then :; \
	elif [ "$$(id -u)" = 0 ]; then apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y $$missing; \
	else echo "note: missing:$$missing; run 'sudo apt-get install -y$$missing'; until then their tests skip (they fail under CI)"; fi

pytest: $(DEV_STAMP) $(WHEELHOUSE_STAMP) system-packages
	$(BIN)/pytest -q

test: lint typecheck pytest

# About 16 minutes; the postgres store's figures come from a PostgreSQL cluster the benchmarks start themselves.
# bench/several_hosts.py needs root (its hosts are network namespaces); without it, it says so and is skipped.
bench: $(DEV_STAMP) system-packages
	$(BIN)/python bench/run.py
	$(BIN)/python bench/sqsd.py
	$(BIN)/python bench/sqsd_fifo.py
	$(BIN)/python bench/depth.py
	$(BIN)/python bench/depth.py --store postgres
	$(BIN)/python bench/up_memory.py
	$(BIN)/python bench/sigv4.py
	$(BIN)/python bench/several_hosts.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
