# Two commands set everything up on a fresh machine:
#   make demo   - install the bot and replay the bundled sample queue (SQLite, sandbox mode)
#   make test   - install what the tests need (Python packages, the local Bluesky server, the reference
#                 implementations), check the types and run every test
#   make check  - lint, types and the fast tests (no Bluesky server, PostgreSQL, browser, reference
#                 implementations, chaos or slow tests): under two minutes. The Mastodon stand-in
#                 (mastodon-mock, a Python package) starts in about two seconds, once per worker, so its
#                 tests stay in; -m "not mastodon" leaves them out
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=
FAST := not pds and not postgres and not slow and not chaos and not browser and not reference

.PHONY: demo test check install install-test pds reference bench lint types screenshots clean

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
	$(BIN)/mypy
	$(BIN)/python -m pytest $(PYTEST_ARGS)

check: install-test
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -q -p no:cacheprovider -n auto -m "$(FAST)" $(PYTEST_ARGS)

bench: install-test
	$(BIN)/python -m bench --markdown bench/results/latest.md

lint: install-test
	$(BIN)/ruff check .

types: install-test
	$(BIN)/mypy

# The README's screenshots of the dashboard (docs/screenshots/), taken by the browser tests; a plain
# test run leaves them alone and saves its pictures in .cache/artifacts/screenshots/.
screenshots: install-test
	ONEYEARAGO_SCREENSHOTS_DIR=docs/screenshots $(BIN)/python -m pytest -q -p no:cacheprovider -m browser tests/web/test_browser.py tests/web/test_browser_editor.py

clean:
	rm -rf $(VENV) .cache .pytest_cache oneyearago-demo
