"""The hand-written stub matches the native module (mypy.stubtest)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.ci import require_module, unavailable

ROOT = Path(__file__).resolve().parents[2]


def test_stubtest() -> None:
    require_module("mypy.stubtest")
    r = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "rust_core._native"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stdout + r.stderr


def test_wrapper_typechecks() -> None:
    require_module("mypy")
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "rust_core/__init__.py",
            "rust_core/_types.py",
            "rust_core/reference",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.skipif(
    os.environ.get("RUST_CORE_CARGO_CHECKS") != "1",
    reason="scripts/test.sh runs cargo itself; set RUST_CORE_CARGO_CHECKS=1 to run rust_core/check.sh here",
)
@pytest.mark.slow
def test_cargo_checks() -> None:
    """cargo fmt --check, clippy -D warnings and cargo test (rust_core/check.sh)."""
    if shutil.which("cargo") is None:  # asked for (RUST_CORE_CARGO_CHECKS=1): not optional
        unavailable("cargo not installed (https://rustup.rs)")
    r = subprocess.run(
        ["bash", str(ROOT / "rust_core" / "check.sh")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
