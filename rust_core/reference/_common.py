"""Input checks and numeric helpers shared by the reference modules."""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import Any

_ND = NormalDist()

# ---------------------------------------------------------------- input helpers


def _floats(values: Any, name: str) -> list[float]:
    if isinstance(values, (str, bytes, bytearray)):
        raise TypeError(
            f"{name}: expected a sequence of numbers or a float64 buffer, got {type(values).__name__}"
        )
    try:
        if hasattr(values, "tolist"):
            values = values.tolist()
        return [float(v) for v in values]
    except (TypeError, ValueError) as e:
        raise TypeError(
            f"{name}: expected a sequence of numbers or a float64 buffer ({e})"
        ) from None


def _nonempty(v: list[float], name: str) -> None:
    if not v:
        raise ValueError(f"{name}: must not be empty")
    _no_nan(v, name)


def _no_nan(v: list[float], name: str) -> None:
    for i, x in enumerate(v):
        if math.isnan(x):
            raise ValueError(f"{name}: contains NaN at index {i}")


def _confidence(c: float) -> None:
    if not (0.0 < c < 1.0):
        raise ValueError(f"confidence: must be in (0, 1), got {c}")


def _norm_sf(z: float) -> float:
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def _ppf(p: float) -> float:
    return _ND.inv_cdf(p)


def _lerp(a: float, b: float, t: float) -> float:
    diff = b - a
    return b - diff * (1.0 - t) if t >= 0.5 else a + diff * t


# ---------------------------------------------------------------- judge


def _q(s: str) -> str:
    """Rust's `{:?}` of a plain string."""
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _rust_float(v: float) -> str:
    """Rust's `{}` of an f64 (shortest round-trip, no exponent)."""
    if v == math.inf:
        return "inf"
    if v == -math.inf:
        return "-inf"
    if math.isnan(v):
        return "NaN"
    if v == int(v) and abs(v) < 1e16:
        return str(int(v)) if v != 0 or math.copysign(1, v) > 0 else "-0"
    r = repr(v)
    if "e" in r:
        from decimal import Decimal

        r = format(Decimal(r), "f")
    return r
