"""Scenario files and load profiles (pure: no I/O besides reading a file).

A scenario names *what* to request; a profile says *how fast*::

    name: demo
    base_url: http://127.0.0.1:8080      # loopback only
    timeout: 5s                           # per request (default 10s)
    headers: {User-Agent: code-load}
    targets:
      - {name: home, method: GET, path: /, weight: 3}
      - name: order
        method: POST
        path: /work
        weight: 1
        headers: {Content-Type: application/json}
        json: {"item": 1}                 # or `body: "raw text"`
        expect_status: [200, 201]
    load:                                 # optional default profile
      executor: constant                  # or ramping (k6 ramping-arrival-rate)
      rate: 50                            # arrivals per second
      duration: 30s
      max_vus: 100                        # max requests in flight; beyond -> dropped

Ramping: ``start_rate`` then ``stages: [{duration: 30s, target: 200}, ...]``,
linear within a stage. :func:`arrival_offsets` yields the intended send times.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from code_foundation.durations import Duration, human
from code_foundation.errors import SpecError
from code_foundation.loader import parse_document, problems_of, read_text
from loadtest.safety import load_target_problem

Method = Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
MAX_DURATION = timedelta(days=7)  # any single run is bounded
MAX_RATE = 1_000_000.0


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, validate_default=True)


class Target(_Model):
    """One named request; picked in proportion to ``weight``."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.:/-]{1,64}$")
    method: Method = "GET"
    path: str = Field("/", pattern=r"^/", max_length=2048)
    weight: int = Field(1, ge=1, le=1000)
    headers: dict[str, str] = Field(default_factory=dict)
    body: str | None = None
    json_body: Any = Field(None, alias="json")
    expect_status: list[int] = Field(default_factory=lambda: [200], min_length=1)
    timeout: Duration | None = Field(None, description="default: the scenario's timeout")

    @field_validator("method", mode="before")
    @classmethod
    def _upper(cls, v: Any) -> Any:
        return v.upper() if isinstance(v, str) else v

    @field_validator("expect_status", mode="before")
    @classmethod
    def _one_status(cls, v: Any) -> Any:
        return [v] if isinstance(v, int) else v

    @field_validator("expect_status")
    @classmethod
    def _statuses(cls, v: list[int]) -> list[int]:
        bad = [s for s in v if not 100 <= s <= 599]
        if bad:
            raise ValueError(f"HTTP statuses are 100..599 (got {bad})")
        return v

    @field_validator("headers")
    @classmethod
    def _headers(cls, v: dict[str, str]) -> dict[str, str]:
        for k, val in v.items():
            if not k or any(c in k for c in ":\r\n ") or any(c in val for c in "\r\n"):
                raise ValueError(f"invalid header {k!r}")
        return v

    @model_validator(mode="after")
    def _one_body(self) -> Target:
        if self.body is not None and self.json_body is not None:
            raise ValueError("set either body or json, not both")
        if self.timeout is not None and self.timeout.total_seconds() <= 0:
            raise ValueError("timeout must be positive")
        return self

    def payload(self) -> bytes:
        if self.json_body is not None:
            return json.dumps(self.json_body, separators=(",", ":")).encode()
        return (self.body or "").encode()


class Stage(_Model):
    duration: Duration
    target: float = Field(ge=0, le=MAX_RATE, description="arrival rate at the end of the stage")

    @field_validator("duration")
    @classmethod
    def _positive(cls, v: timedelta) -> timedelta:
        if v.total_seconds() <= 0:
            raise ValueError("stage duration must be positive")
        return v


class LoadProfile(_Model):
    """How fast: open model, arrivals per second independent of response times."""

    executor: Literal["constant", "ramping"] = "constant"
    rate: float | None = Field(None, gt=0, le=MAX_RATE, description="constant: arrivals per second")
    start_rate: float = Field(0.0, ge=0, le=MAX_RATE, description="ramping: rate at t=0")
    stages: list[Stage] = Field(default_factory=list)
    duration: Duration | None = Field(None, description="constant: how long")
    max_vus: int = Field(100, ge=1, le=10_000, description="max requests in flight")
    graceful_stop: Duration = Field(default=human("5s"), description="wait this long for in-flight")

    @model_validator(mode="after")
    def _shape(self) -> LoadProfile:
        if self.executor == "constant":
            if self.rate is None:
                raise ValueError("rate is required for executor constant (arrivals per second)")
            if self.duration is None or self.duration.total_seconds() <= 0:
                raise ValueError("duration must be positive")
            if self.stages:
                raise ValueError("stages are for executor: ramping")
        else:
            if not self.stages:
                raise ValueError("executor ramping needs stages")
            if self.rate is not None:
                raise ValueError("rate is for executor: constant (use start_rate and stages)")
            total = sum((s.duration for s in self.stages), timedelta())
            if self.duration is not None and self.duration != total:
                raise ValueError("duration of a ramping profile is the sum of its stages; omit it")
            self.duration = total
            if max(self.start_rate, *(s.target for s in self.stages)) <= 0:
                raise ValueError("a ramping profile needs some stage with target > 0")
        if self.duration is None:
            raise ValueError("a constant profile needs a duration")
        if self.duration > MAX_DURATION:
            raise ValueError(f"duration must be at most {MAX_DURATION.days} days")
        if self.graceful_stop.total_seconds() < 0:
            raise ValueError("graceful_stop cannot be negative")
        return self

    @property
    def seconds(self) -> float:
        if self.duration is None:
            raise ValueError("the profile has no duration")
        return self.duration.total_seconds()

    def _segments(self) -> list[tuple[float, float, float]]:
        """(duration_s, rate_start, rate_end) pieces."""
        if self.executor == "constant":
            if self.rate is None:
                raise ValueError("a constant profile needs a rate")
            return [(self.seconds, self.rate, self.rate)]
        out, prev = [], self.start_rate
        for s in self.stages:
            out.append((s.duration.total_seconds(), prev, s.target))
            prev = s.target
        return out

    def rate_at(self, t: float) -> float:
        start = 0.0
        for d, a, b in self._segments():
            if t < start + d:
                return a + (b - a) * (t - start) / d
            start += d
        return 0.0

    def planned(self) -> int:
        """Number of arrivals the profile schedules (exact, deterministic)."""
        total = sum(d * (a + b) / 2 for d, a, b in self._segments())
        return max(0, math.ceil(total - 1e-9))

    def arrival_offsets(self) -> Iterator[float]:
        """Intended send times (seconds from start) of every arrival, in order."""
        yield from arrival_offsets(self._segments(), self.planned())


def arrival_offsets(segments: list[tuple[float, float, float]], count: int) -> Iterator[float]:
    """Arrival k happens when the integrated rate reaches k (k = 0, 1, ...)."""
    k, base_t, base_n = 0, 0.0, 0.0
    for d, a, b in segments:
        seg_n = d * (a + b) / 2
        c2 = (b - a) / (2 * d)
        while k < count and k < base_n + seg_n - 1e-9:
            dn = k - base_n
            disc = a * a + 4 * c2 * dn
            tau = 2 * dn / (a + math.sqrt(max(disc, 0.0))) if dn > 0 else 0.0
            yield base_t + min(tau, d)
            k += 1
        base_t += d
        base_n += seg_n


class Scenario(_Model):
    name: str = Field("scenario", pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    base_url: str | None = Field(None, description="loopback only; a soak plan may supply it")
    timeout: Duration = human("10s")
    headers: dict[str, str] = Field(default_factory=dict)
    targets: list[Target] = Field(min_length=1, max_length=100)
    load: LoadProfile | None = None

    @field_validator("base_url")
    @classmethod
    def _loopback(cls, v: str | None) -> str | None:
        if v is None:
            return v
        problem = load_target_problem(v)
        if problem:
            raise ValueError(problem)
        return v.rstrip("/")

    @model_validator(mode="after")
    def _unique(self) -> Scenario:
        keys = [(t.name, t.method) for t in self.targets]
        dupes = sorted({f"{m} {n}" for n, m in keys if keys.count((n, m)) > 1})
        if dupes:
            raise ValueError(f"target name+method must be unique (duplicated: {', '.join(dupes)})")
        if self.timeout.total_seconds() <= 0:
            raise ValueError("timeout must be positive")
        return self

    def weighted_cycle(self) -> list[int]:
        """Smooth weighted round-robin order of target indexes (deterministic)."""
        w = [t.weight for t in self.targets]
        g = math.gcd(*w)
        w = [x // g for x in w]
        current, total, order = [0] * len(w), sum(w), []
        for _ in range(total):
            for i, x in enumerate(w):
                current[i] += x
            best = max(range(len(w)), key=lambda i: current[i])
            current[best] -= total
            order.append(best)
        return order


def _load_yaml(text: str, source: str) -> dict[str, Any]:
    """A YAML/JSON mapping, or SpecError (the one document loader's rules)."""
    data = parse_document(text, source)
    if not isinstance(data, dict):
        raise SpecError(source, ["the document must be a mapping"])
    return data


def parse_scenario(text: str | dict[str, Any], source: str = "scenario") -> Scenario:
    """YAML text (or a mapping) -> Scenario, or SpecError naming every bad field."""
    data = _load_yaml(text, source) if isinstance(text, str) else text
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        raise SpecError(source, problems_of(exc)) from None


def load_scenario(path: str | Path) -> Scenario:
    """A scenario file (missing, binary or non-UTF-8: SpecError naming the file)."""
    return parse_scenario(read_text(path), str(path))


def make_profile(
    base: LoadProfile | None,
    *,
    rate: float | None = None,
    duration: Any = None,
    max_vus: int | None = None,
    source: str = "load profile",
) -> LoadProfile:
    """Apply command-line overrides to a scenario's profile; SpecError when invalid."""
    data: dict[str, Any] = base.model_dump(exclude_none=True) if base else {}
    if rate is not None:
        data.update(executor="constant", rate=rate, stages=[])
        data.pop("start_rate", None)
    if duration is not None:
        data["duration"] = duration
    if max_vus is not None:
        data["max_vus"] = max_vus
    if data.get("executor") == "ramping" and duration is not None:
        raise SpecError(source, ["duration: a ramping profile's duration is set by its stages"])
    try:
        return LoadProfile.model_validate(data)
    except ValidationError as exc:
        raise SpecError(source, problems_of(exc)) from None
