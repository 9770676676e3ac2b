# `make test` is the project's test command (README, .ci/run).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The function's runtime closure, resolved once for every platform (see requirements/function.in).
LOCK := requirements/function.txt
UV := uv==0.13.9
# pytest-xdist: the whole suite spends half of its time waiting (worker processes, the embedded AWS,
# polls), so one worker per core leaves the cores half idle: two per core. The quick tests keep every
# core busy, and each worker costs seconds of start-up and collection: one per core. worksteal hands
# tests to whichever worker is free, so that a long test does not hold a queue of short ones.
XDIST_ALL := -n $(shell echo $$(( $$(nproc) * 2 ))) --dist worksteal
XDIST_QUICK := -n auto --dist worksteal

.PHONY: test quick lint unit bench demo up dashboard chaos clean lock

# The locked closure first, hash-checked and exactly as `imgproc package` puts it in the zip; then the
# project and its dev tools, constrained by the lock so no tool moves a locked package.
$(STAMP): setup.cfg pyproject.toml $(LOCK)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps -r $(LOCK)
	grep -Eo '^[A-Za-z0-9._-]+==[^ ]+' $(LOCK) > $(VENV)/constraints.txt  # pip: hashes make -c check all
	$(BIN)/python -m pip install --quiet -c $(VENV)/constraints.txt -e '.[dev]'
	touch $(STAMP)

lock:  # re-resolve requirements/function.in to the newest versions, with hashes for every platform
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet '$(UV)'
	$(BIN)/uv pip compile requirements/function.in --universal --python-version 3.11 --upgrade \
		--generate-hashes --no-strip-markers --custom-compile-command 'make lock' --output-file $(LOCK)

test: $(STAMP) lint unit

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports  # the package graph: the contracts in setup.cfg

unit: $(STAMP)  # the whole suite, on every core (pytest-xdist)
	$(BIN)/pytest $(XDIST_ALL)

quick: $(STAMP)  # while you work: lint, then the tests that take milliseconds (no e2e, chaos or slow)
	$(BIN)/ruff check .
	$(BIN)/pytest $(XDIST_QUICK) -q -m "not e2e and not chaos and not slow"

demo: $(STAMP)
	$(BIN)/imgproc demo

up: $(STAMP)
	$(BIN)/imgproc up

dashboard: $(STAMP)  # regenerate the template's dashboard and alarms from observability/dashboards/
	$(BIN)/python -m observability.dashboards.cloudwatch --write

chaos: $(STAMP)  # the long chaos run (400 uploads, faults, a killed worker) and a long invariant search
	IMGPROC_CHAOS_UPLOADS=400 $(BIN)/pytest -m chaos -s
	IMGPROC_INVARIANT_EXAMPLES=400 IMGPROC_INVARIANT_SHRINK=1 $(BIN)/pytest tests/test_reconcile_invariant.py

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -c $(VENV)/constraints.txt -e '.[bench]'  # pyvips, for bench_vips
	$(BIN)/python benchmarks/bench_imaging.py
	$(BIN)/python benchmarks/bench_vips.py
	$(BIN)/python benchmarks/bench_encoders.py
	$(BIN)/python benchmarks/bench_threads.py
	$(BIN)/python benchmarks/bench_e2e.py
	$(BIN)/python benchmarks/bench_load.py
	$(BIN)/python benchmarks/bench_latency.py
	$(BIN)/python benchmarks/bench_coldstart.py
	$(BIN)/python benchmarks/bench_memory.py

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache
