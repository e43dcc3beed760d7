#!/usr/bin/env bash
# The whole test suite: Rust unit tests and clippy, then pytest (which starts
# every real server it needs). Run through `make test`.
set -uo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
export PATH="$PWD/$VENV/bin:$PATH"
status=0

echo "== rust_core: cargo fmt --check, clippy -D warnings, cargo test"
if bash rust_core/check.sh; then
  echo "rust_core: ok"
else
  echo "rust_core: FAILED"; status=1
fi

echo "== ruff format --check"
if ! ruff format --check .; then echo "ruff format: FAILED (run: ruff format .)"; status=1; fi

echo "== ruff (lint)"
if ! ruff check .; then echo "ruff: FAILED"; status=1; fi

echo "== mypy (pydantic plugin, check_untyped_defs)"
if ! mypy code_foundation workflows activities workers chaos loadtest; then echo "mypy: FAILED"; status=1; fi

echo "== deptry (every imported package is declared)"
if ! deptry .; then echo "deptry: FAILED"; status=1; fi

echo "== pytest"
# two pytest processes, a test module never split between them (its module fixtures,
# servers and time-skipping sessions stay in one process): the suite mostly waits on
# timers and servers, so this halves its wall time on two cores. PYTEST_WORKERS=0: serial.
python -m pytest -q -ra --durations=15 -n "${PYTEST_WORKERS:-2}" --dist loadfile "$@"
rc=$?
if [[ $rc -eq 5 ]]; then echo "pytest collected no tests"; rc=1; fi
[[ $rc -ne 0 ]] && status=$rc
exit $status
