# Two commands matter: `make run` (collector on the embedded store) and `make test` (the whole suite).
# The venv holds the collector editable with the embedded engine (the `embedded` extra) and the dev tools.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test lint bench-ingest bench-sdk bench-pixel bench-journey bench-analytics demo clean

$(STAMP): pyproject.toml sdk/pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[embedded,dev]' -e ./sdk
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/reise serve

# Demo journeys into the collector `make run` started (in another terminal), then the report.
demo: $(STAMP)
	$(VENV)/bin/reise demo
	$(VENV)/bin/reise report

lint: $(STAMP)
	$(PY) -m ruff check collector tests bench sdk
	$(PY) -m mypy

test: lint
	$(PY) -m pytest

bench-ingest: $(STAMP)
	$(PY) bench/ingest.py

bench-sdk: $(STAMP)
	$(PY) bench/sdk.py

# The pixel against a bare aiohttp handler answering the same GIF, in one run (wrk; see bench/README.md)
bench-journey: $(STAMP)
	$(PY) bench/journey_scale.py

bench-analytics: $(STAMP)
	$(PY) bench/analytics_scale.py

bench-pixel: $(STAMP)
	$(PY) bench/pixel.py

clean:
	rm -rf $(VENV) reise-data .pytest_cache .mypy_cache .ruff_cache
