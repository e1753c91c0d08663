# Two commands set everything up on a fresh machine:
#   make demo   - install the bot and replay the bundled sample queue (SQLite, sandbox mode)
#   make test   - install what the tests need (Python packages, the local Bluesky server, the reference
#                 implementations) and run them all
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: demo test install install-test pds reference bench lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .

install-test: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'

pds:
	@if command -v node >/dev/null 2>&1; then bash scripts/install-pds.sh; \
	else echo "node not found: the Bluesky server tests will be skipped"; fi

reference:
	@if command -v node >/dev/null 2>&1; then bash scripts/install-reference.sh; \
	else echo "node not found: the reference implementation tests will be skipped"; fi

demo: install
	$(BIN)/oneyearago demo

test: install-test pds reference
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: install-test
	$(BIN)/python -m bench --markdown bench/results/latest.md

lint: install-test
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) .cache .pytest_cache oneyearago-demo
