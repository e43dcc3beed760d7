#!/usr/bin/env bash
# Rust-side checks for rust_core, run by CI: formatting, clippy (warnings are errors), unit tests.
# `cargo test` links libpython normally because pyo3's `extension-module` feature is
# enabled only by maturin (pyproject [tool.maturin] features).
set -euo pipefail
cd "$(dirname "$0")"
export PYO3_PYTHON="${PYO3_PYTHON:-$(command -v python3)}"
cargo fmt --check
cargo clippy --all-targets -- -D warnings
cargo test
