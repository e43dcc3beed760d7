"""Probe tolerances and their evaluation, plus the loopback rule for probe URLs.

A probe observes one or more HTTP responses (:class:`Observation`); its
tolerance decides whether the steady state holds. Kinds (Chaos Toolkit names
where they exist): ``status`` (exact status or list), ``exact`` (body equals),
``range`` (status / latency_ms / numeric body within bounds), ``regex`` (body
matches), ``jsonpath`` (value at a JSON path equals ``expect`` or exists), and
``slo`` (error-rate burn over ``requests`` calls stays under
``max_burn_rate``). Burn rate = ``error_rate / (1 - objective)``.
:func:`window_burn` is the fault window's abort condition: SRE-Workbook
multi-window burn (long window = the last ``burn_window`` probe rounds, short
window = the last round; fires when both exceed the factor) computed by
``rust_core.burn_rates``, or by the same formula in Python when the native
module is not built. Pure functions; the probe activity does the HTTP."""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

import rust_core as _rust_core  # imported here (not lazily) so the workflow sandbox passes it


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class StatusTolerance(_Model):
    type: Literal["status"] = "status"
    status: int | list[int] = 200


class ExactTolerance(_Model):
    type: Literal["exact"] = "exact"
    value: str | int | float | bool
    target: Literal["body", "status"] = "body"


class RangeTolerance(_Model):
    type: Literal["range"] = "range"
    range: tuple[float, float]
    target: Literal["status", "latency_ms", "body"] = "status"

    @field_validator("range")
    @classmethod
    def _ordered(cls, v: tuple[float, float]) -> tuple[float, float]:
        if v[0] > v[1]:
            raise ValueError("range lower bound is above the upper bound")
        return v


class RegexTolerance(_Model):
    type: Literal["regex"] = "regex"
    pattern: str
    target: Literal["body"] = "body"

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, v: str) -> str:
        try:
            re.compile(v)
        except re.error as e:
            raise ValueError(f"pattern does not compile: {e}") from None
        return v


class JsonPathTolerance(_Model):
    type: Literal["jsonpath"] = "jsonpath"
    path: str = Field(pattern=r"^\$")
    expect: Any = None
    target: Literal["body"] = "body"


class SloTolerance(_Model):
    type: Literal["slo"] = "slo"
    objective: float = Field(0.99, gt=0, lt=1, description="fraction of good requests")
    max_burn_rate: float = Field(1.0, gt=0)
    ok_status: list[int] = Field(default_factory=lambda: list(range(200, 400)))


Tolerance = Annotated[
    StatusTolerance
    | ExactTolerance
    | RangeTolerance
    | RegexTolerance
    | JsonPathTolerance
    | SloTolerance,
    Field(discriminator="type"),
]


class Observation(_Model):
    """What a probe saw: the last response plus counts over all its requests."""

    status: int | None = None
    body: str = ""
    latency_ms: float = 0.0
    error: str | None = None
    requests: int = 0
    failures: int = 0  # requests that errored or were outside ok_status / status


def burn_rate(failures: int, requests: int, objective: float) -> float:
    if requests <= 0:
        return 0.0
    return (failures / requests) / (1.0 - objective)


def window_burn(
    timestamps: list[float],
    good: list[float],
    total: list[float],
    objective: float,
    factor: float,
    long_window: float,
    short_window: float,
    now: float,
) -> tuple[float, float, bool, str]:
    """(long burn, short burn, firing, engine) over ``now - w < t <= now`` windows."""
    res = _rust_core.burn_rates(
        timestamps,
        good,
        total,
        objective,
        windows=[(long_window, short_window, factor, "chaos")],
        now=now,
    )
    w = res.windows[0]
    return w.long_burn_rate, w.short_burn_rate, w.firing, "rust_core.burn_rates"


def _jsonpath(body: str, path: str) -> list[Any]:
    from jsonpath_ng import parse  # local import: only the probe activity evaluates

    return [m.value for m in parse(path).find(json.loads(body))]


def evaluate(tol: Any, obs: Observation) -> tuple[bool, str]:
    """Does ``obs`` fall within tolerance ``tol``? Returns (ok, human detail)."""
    if tol.type == "slo":
        rate = burn_rate(obs.failures, obs.requests, tol.objective)
        ok = obs.requests > 0 and rate <= tol.max_burn_rate
        return ok, (
            f"{obs.failures}/{obs.requests} bad, burn rate {rate:.2f} "
            f"(max {tol.max_burn_rate:g} at objective {tol.objective:g})"
        )
    if obs.error is not None:
        return False, f"request failed: {obs.error}"
    if tol.type == "status":
        allowed = tol.status if isinstance(tol.status, list) else [tol.status]
        return obs.status in allowed, f"status {obs.status} (want {allowed})"
    if tol.type == "exact":
        got: Any = obs.status if tol.target == "status" else obs.body.strip()
        want = tol.value if tol.target == "status" else str(tol.value)
        return got == want, f"{tol.target} {got!r} (want {want!r})"
    if tol.type == "range":
        lo, hi = tol.range
        if tol.target == "status":
            val: float | None = float(obs.status) if obs.status is not None else None
        elif tol.target == "latency_ms":
            val = obs.latency_ms
        else:
            try:
                val = float(obs.body.strip())
            except ValueError:
                return False, f"body {obs.body[:60]!r} is not a number"
        ok = val is not None and lo <= val <= hi
        return ok, f"{tol.target} {val} (want {lo:g}..{hi:g})"
    if tol.type == "regex":
        ok = re.search(tol.pattern, obs.body) is not None
        return ok, f"body {'matches' if ok else 'does not match'} /{tol.pattern}/"
    if tol.type == "jsonpath":
        try:
            values = _jsonpath(obs.body, tol.path)
        except (ValueError, TypeError) as e:
            return False, f"body is not JSON ({e})"
        if tol.expect is None:
            return bool(values), f"{tol.path} {'found' if values else 'not found'}"
        expect = tol.expect if isinstance(tol.expect, list) else [tol.expect]
        return values == expect, f"{tol.path} = {values!r} (want {expect!r})"
    return False, f"unknown tolerance {tol.type!r}"
