# The two commands a newcomer needs:
#   make demo   set up and run the demo on the embedded stack
#   make test   set up and run the whole test suite (what CI runs)
VENV ?= .venv
PY := $(VENV)/bin/python
export PATH := $(abspath $(VENV))/bin:$(PATH)

.PHONY: demo test setup setup-test lint rust-check bench down screenshot crash-matrix

demo: setup
	$(VENV)/bin/codectl demo

test: setup-test
	bash scripts/test.sh

setup:
	bash scripts/setup.sh

setup-test:
	bash scripts/setup.sh --test

lint: setup-test
	$(VENV)/bin/ruff check .
	cd rust_core && cargo fmt --check && cargo clippy -- -D warnings

rust-check:
	cd rust_core && cargo test -q && cargo clippy -q -- -D warnings

bench: setup-test
	$(PY) bench/bench_engine.py
	$(PY) bench/bench_rust_core.py
	$(PY) bench/bench_load.py
	$(PY) bench/bench_judge.py
	$(PY) bench/bench_time_to_safety.py

# every workflow type x crash point x {worker, agent, temporal}; CRASH_TRIALS=N per cell,
# CRASH_JOBS stacks at once; the table goes to artifacts/crash-matrix.md
crash-matrix: setup-test
	$(PY) -m tests.crash.matrix

screenshot: setup-test
	mkdir -p screenshots
	$(PY) scripts/screenshot.py 'http://127.0.0.1:8233/namespaces/default/workflows?query=CodeService%3D%22demo%22' screenshots/demo-runs.png

down:
	$(VENV)/bin/codectl down
