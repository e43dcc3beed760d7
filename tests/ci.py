"""What a test does when something it needs is missing: fail under CI, skip elsewhere.

``in_ci()`` is the one reading of the ``CI`` environment variable in the test suite
(case-insensitive ``1``, ``true`` or ``yes``). ``unavailable(msg)`` fails the test under
CI and skips it with ``msg`` otherwise; ``require_server`` (a server binary that is not
installed or does not start) and ``require_module`` (a test dependency such as scipy,
oteltap or mypy; the replacement for ``pytest.importorskip``) both go through it, so a
missing dependency can never turn a CI run green."""

from __future__ import annotations

import importlib
import os
from types import ModuleType
from typing import NoReturn

import pytest

CI_TRUE = ("1", "true", "yes")


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in CI_TRUE


def unavailable(msg: str) -> NoReturn:
    """Fail (under CI) or skip (elsewhere) the running test with ``msg``."""
    if in_ci():
        pytest.fail(msg)
    pytest.skip(msg, allow_module_level=True)


def require_server(name: str, reason: str = "") -> NoReturn:
    """Skip (locally) or fail (under CI) because server ``name`` is unavailable."""
    unavailable(f"{name} unavailable: {reason}" if reason else f"{name} unavailable")


def require_module(name: str, install: str = "") -> ModuleType:
    """Import and return module ``name``; when it is missing, fail under CI, else skip.

    Usable at module level (like ``pytest.importorskip``) and inside a test."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        hint = install or f"pip install -e '.[test]' provides {name.split('.')[0]}"
        unavailable(f"python module {name} not importable ({exc}); {hint}")
