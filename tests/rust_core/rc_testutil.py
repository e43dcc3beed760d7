"""Comparison helper for the rust_core tests."""

from __future__ import annotations

import math
from typing import Any

from hypothesis import HealthCheck, settings

# per-test settings (not a global profile: other suites keep theirs)
RC = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
RC_SLOW = settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def same(a: Any, b: Any, rel: float = 0.0) -> bool:
    """Structural equality that treats NaN == NaN (and compares floats within rel)."""
    if hasattr(a, "to_dict") and hasattr(b, "to_dict"):
        return same(a.to_dict(), b.to_dict(), rel)
    if isinstance(a, float) or isinstance(b, float):
        if a is None or b is None:
            return a is b
        fa, fb = float(a), float(b)
        if math.isnan(fa) or math.isnan(fb):
            return math.isnan(fa) and math.isnan(fb)
        if fa == fb:
            return True
        return rel > 0 and abs(fa - fb) <= rel * max(abs(fa), abs(fb))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k], rel) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same(x, y, rel) for x, y in zip(a, b, strict=True))
    return bool(a == b)
