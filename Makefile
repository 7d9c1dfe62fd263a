# make run: set up .venv, migrate, seed a demo district, serve on http://127.0.0.1:$(PORT)
# make test: set up .venv with test dependencies and run the whole suite
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
# Test processes run side by side (pytest-xdist); TEST_WORKERS=0 runs the suite in one.
TEST_WORKERS ?= 2

.PHONY: run test bench bench-smoke lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: $(BIN)/python pyproject.toml constraints.txt
	$(BIN)/pip install --quiet -c constraints.txt -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/pip install --quiet -c constraints.txt -e '.[test]'
	touch $@

run: $(VENV)/.installed
	$(BIN)/python -m kiosk.keys
	KIOSK_DEMO=1 KIOSK_BASE_URL=$${KIOSK_BASE_URL:-http://127.0.0.1:$(PORT)} $(BIN)/flask --app app demo
	KIOSK_DEMO=1 KIOSK_BASE_URL=$${KIOSK_BASE_URL:-http://127.0.0.1:$(PORT)} PORT=$(PORT) \
		exec $(BIN)/gunicorn -c gunicorn.conf.py app:app

# Test-only node tools (an OpenID Connect provider, axe-core), where npm is installed; the
# tests that need them skip without them (and fail under KIOSK_TEST_REQUIRE_ALL=1).
JS := tests/js

test: $(VENV)/.installed-test
	@if command -v npm >/dev/null 2>&1 && { [ ! -f $(JS)/node_modules/.package-lock.json ] || \
		[ $(JS)/package-lock.json -nt $(JS)/node_modules/.package-lock.json ]; }; then \
		npm ci --prefix $(JS) --no-audit --no-fund --loglevel=error; fi
	$(BIN)/pytest -n $(TEST_WORKERS)

bench: $(VENV)/.installed-test
	$(BIN)/python bench/alert_latency.py
	$(BIN)/python bench/office.py
	$(BIN)/python bench/desk_taps.py
	$(BIN)/python bench/review.py

# A few seconds of each benchmark: checks that they run and print their line, not speed.
bench-smoke: $(VENV)/.installed-test
	$(BIN)/python bench/alert_latency.py --quick | $(BIN)/python -c 'import json,sys; d=json.loads(sys.stdin.read()); assert d["bench"] == "alert_latency" and "p95_ms" in d, d'
	$(BIN)/python bench/office.py --quick | $(BIN)/python -c 'import json,sys; d=json.loads(sys.stdin.read()); assert d["bench"] == "office" and "delivered" in d, d'
	$(BIN)/python bench/desk_taps.py --quick | $(BIN)/python -c 'import json,sys; d=json.loads(sys.stdin.read()); assert d["bench"] == "desk_taps" and "max_taps_to_script" in d, d'
	$(BIN)/python bench/review.py --quick | $(BIN)/python -c 'import json,sys; d=json.loads(sys.stdin.read()); assert d["bench"] == "review" and "list_p95_ms" in d, d'

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/bandit -q -c pyproject.toml -r kiosk app.py gunicorn.conf.py

clean:
	rm -rf $(VENV) .pytest_cache
