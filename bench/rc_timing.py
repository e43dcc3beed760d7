"""Timing and memory helpers of bench_rust_core: best-of-n wall time within a budget,
the resident-set high-water mark gained during a call, and the rows of the report."""

from __future__ import annotations

import gc
import math
import time
from collections.abc import Callable
from typing import Any

ROWS: list[dict[str, Any]] = []


def timeit(fn: Callable[[], Any], repeat: int = 3, budget: float = 20.0) -> float:
    best = math.inf
    start = time.perf_counter()
    for _ in range(repeat):
        gc.collect()
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
        if time.perf_counter() - start > budget:
            break
    return best


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1])
    return 0


def _trim() -> None:
    """Hand freed heap pages back to the OS so a new allocation shows up in RSS."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def peak_mb(fn: Callable[[], Any]) -> float:
    """Resident high-water mark gained while running fn (MB); NaN where unsupported."""
    try:
        gc.collect()
        _trim()
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        base = _status_kb("VmRSS:")
        fn()
        return max(_status_kb("VmHWM:") - base, 0) / 1024
    except OSError:
        return math.nan


def row(
    fn: str,
    n: int,
    rust: float,
    refs: float | None,
    other: float | None,
    other_name: str,
    mem: float,
    ref_extrapolated: bool = False,
    note: str = "",
) -> None:
    ROWS.append(
        dict(
            fn=fn,
            n=n,
            rust=rust,
            ref=refs,
            ref_x=ref_extrapolated,
            other=other,
            other_name=other_name,
            mem=mem,
            note=note,
        )
    )


def nlogn(t: float, n0: int, n1: int) -> float:
    return t * (n1 * math.log(n1)) / (n0 * math.log(n0))


def fmt_t(t: float | None) -> str:
    if t is None:
        return "-"
    return f"{t * 1e3:9.2f}ms" if t < 10 else f"{t:9.2f}s "
