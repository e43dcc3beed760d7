"""Declared latency targets of a readiness certificate (pure): ``"p95 < 200ms at 100 rps"``
parsed into :class:`LatencyTarget` (re-exported by :mod:`workflows.readiness_models`)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict

_TARGET = re.compile(
    r"^\s*p(50|90|95|99)\s*<\s*(\d+(?:\.\d+)?)\s*ms(?:\s+at\s+(\d+(?:\.\d+)?)\s*rps)?\s*$",
    re.I,
)


class LatencyTarget(BaseModel):
    """``"p95 < 200ms at 100 rps"``: the quantile must be under the bound while the
    achieved rate is at least the given rate."""

    model_config = ConfigDict(extra="forbid", validate_default=True)

    text: str
    quantile: Literal["p50", "p90", "p95", "p99"]
    below_ms: float
    at_rps: float | None = None

    @classmethod
    def parse(cls, text: str) -> LatencyTarget:
        m = _TARGET.match(text)
        if m is None:
            raise ValueError(f"{text!r} is not a target (write e.g. 'p95 < 200ms at 100 rps')")
        rps = float(m.group(3)) if m.group(3) else None
        return cls.model_validate(
            {
                "text": text.strip(),
                "quantile": f"p{m.group(1)}",
                "below_ms": float(m.group(2)),
                "at_rps": rps,
            }
        )
