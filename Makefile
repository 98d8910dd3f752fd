# conveyor: `make demo` runs the main job, `make test` runs lint, types and the whole suite.
# Both set everything up first, from a fresh clone on a machine with Python 3.11 and make.

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck pytest browser bench install clean

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "error: $(PYTHON) not found; install Python 3.11 or run 'make PYTHON=python3 ...'"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# The image pipeline example under `conveyor up`: a web tier, worker instances, the queue, autoscaling.
demo: $(STAMP)
	@echo "Starting the image pipeline. When it is up, in another terminal:"
	@echo "  curl -X POST http://127.0.0.1:8000/sample      # enqueue a resize task (or open http://127.0.0.1:8000)"
	@echo "  .venv/bin/conveyor status                        # queue, instances, scaling; also: events, health, logs"
	@echo "  open http://127.0.0.1:9325                       # the web console (or: .venv/bin/conveyor console)"
	@echo "Thumbnails appear in examples/image-pipeline/data/thumbs/. Ctrl-C drains and stops."
	$(BIN)/conveyor up examples/image-pipeline

lint: $(STAMP)
	$(BIN)/ruff check src tests bench examples
	$(BIN)/ruff format --check src tests bench examples

typecheck: $(STAMP)
	$(BIN)/mypy

# Debian's chromium, which the console's browser tests drive with Playwright (no browser is downloaded).
# As root (CI) it is installed when missing; otherwise a note says the browser tests will skip (outside CI).
browser:
	@command -v chromium >/dev/null || \
	if [ "$$(id -u)" = 0 ]; then apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; \
	else echo "note: chromium is missing and this is not root: run 'sudo apt-get install -y chromium'; until then the console's browser tests skip (they fail under CI)"; fi

pytest: $(STAMP) browser
	$(BIN)/pytest -q

test: lint typecheck pytest

bench: $(STAMP)
	$(BIN)/python bench/run.py
	$(BIN)/python bench/sqsd.py
	$(BIN)/python bench/depth.py
	$(BIN)/python bench/up_memory.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
