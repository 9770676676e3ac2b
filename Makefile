# `make test` is the project's test command (README, .ci/run).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test lint unit bench demo up dashboard chaos clean

$(STAMP): setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

test: $(STAMP) lint unit

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

unit: $(STAMP)
	$(BIN)/pytest

demo: $(STAMP)
	$(BIN)/imgproc demo

up: $(STAMP)
	$(BIN)/imgproc up

dashboard: $(STAMP)  # regenerate the template's dashboard and alarms from observability/dashboard.py
	$(BIN)/python -m observability.dashboard --write

chaos: $(STAMP)  # the long chaos run: 400 uploads, faults, a worker killed mid-batch
	IMGPROC_CHAOS_UPLOADS=400 $(BIN)/pytest -m chaos -s

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_imaging.py
	$(BIN)/python benchmarks/bench_threads.py
	$(BIN)/python benchmarks/bench_e2e.py
	$(BIN)/python benchmarks/bench_load.py

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache
