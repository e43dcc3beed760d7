"""Argo-style measured metrics of an analysis step (the Web and Job metric providers):
the spec's ``measurements:`` list, the ``analysis.measure`` activity's input/result
models and the pure success check both sides share.

A measurement is *one value* per interval, checked against a ``success`` condition —
not a canary-vs-baseline comparison:

* ``web``: an HTTP call (method, URL allowed by ``allowed_targets``, headers, secret
  headers as references like hooks, body, timeout); the value is the number at
  ``json_path`` in the JSON response (a non-2xx answer, a non-JSON body, a missing
  path or a non-number is an *error* measurement);
* ``job``: a command (argv list, never a shell; env, workdir, timeout); the value is
  its ``exit_code`` or the last number it prints on stdout (``stdout_number``).

``success`` holds when every bound given holds (``min`` <= value <= ``max``,
``value == equals``); a job read by exit code with no bound passes on exit code 0.
Failed and error measurements both count against the measurement's
``failure_limit`` over the step's intervals; beyond it the analysis fails (rollback)
unless ``dry_run`` — then the verdicts are only recorded. Pure: no I/O."""

from __future__ import annotations

import math
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from code_foundation.durations import Duration, human
from workflows.hooks_spec import EXCERPT_LIMIT, parse_path


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, validate_default=True)


class WebProvider(_Model):
    url: str = Field(pattern=r"^https?://", description="must be allowed by allowed_targets")
    method: Literal["GET", "POST", "PUT", "PATCH"] = "GET"
    headers: dict[str, str] = Field(default_factory=dict)
    secret_headers: dict[str, str] = Field(
        default_factory=dict,
        description="header -> secret reference, optionally after a literal prefix: "
        "'Bearer env:METRICS_TOKEN' (resolved by the activity, never in history)",
    )
    body: str | None = None
    json_path: str = Field(min_length=1, description="path to the number, e.g. $.data.ratio")
    timeout: Duration = human("10s")

    @model_validator(mode="after")
    def _check(self) -> WebProvider:
        parse_path(self.json_path)
        if not parse_path(self.json_path):
            raise ValueError(f"json_path {self.json_path!r} must name a field of the response")
        if self.timeout.total_seconds() <= 0:
            raise ValueError("timeout must be positive")
        return self


class JobProvider(_Model):
    argv: list[str] = Field(
        min_length=1, description="argv; '{python}' is the worker's Python; never a shell"
    )
    env: dict[str, str] = Field(default_factory=dict)
    workdir: str | None = None
    timeout: Duration = human("30s")
    value: Literal["exit_code", "stdout_number"] = "exit_code"

    @model_validator(mode="after")
    def _check(self) -> JobProvider:
        if self.timeout.total_seconds() <= 0:
            raise ValueError("timeout must be positive")
        return self


class MeasurementProvider(_Model):
    web: WebProvider | None = None
    job: JobProvider | None = None

    @model_validator(mode="after")
    def _one(self) -> MeasurementProvider:
        if (self.web is None) == (self.job is None):
            raise ValueError("set exactly one of provider.web or provider.job")
        return self


class Success(_Model):
    """Every bound given must hold; none given: exit code 0 (jobs), required (web)."""

    min: float | None = None
    max: float | None = None
    equals: float | None = None

    def given(self) -> bool:
        return self.min is not None or self.max is not None or self.equals is not None


class MeasuredMetric(_Model):
    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_.:-]{0,62}$")
    provider: MeasurementProvider
    success: Success = Field(default_factory=Success)
    failure_limit: int = Field(
        0, ge=0, description="failed/error measurements tolerated over the step's intervals"
    )
    dry_run: bool = Field(False, description="record the verdicts, never fail the run")

    @model_validator(mode="after")
    def _check(self) -> MeasuredMetric:
        s = self.success
        if not s.given():
            job = self.provider.job
            if job is None or job.value != "exit_code":
                raise ValueError(
                    f"measurement {self.name!r}: give success.min, success.max or success.equals"
                )
        if s.min is not None and s.max is not None and s.min > s.max:
            raise ValueError(f"measurement {self.name!r}: success.min exceeds success.max")
        return self

    @property
    def kind(self) -> Literal["web", "job"]:
        return "web" if self.provider.web is not None else "job"

    def effective_success(self) -> Success:
        return self.success if self.success.given() else Success(equals=0)


# ---------------------------------------------------------------- activity models
class MeasureInput(_Model):
    measurements: list[MeasuredMetric]
    service: str
    environment: str
    version: str
    step_index: int
    interval_index: int


class MeasurementResult(_Model):
    name: str
    kind: Literal["web", "job"]
    dry_run: bool = False
    status: Literal["passed", "failed", "error"]
    value: float | None = None
    message: str = ""
    duration_ms: float = 0.0
    excerpt: str = Field("", max_length=EXCERPT_LIMIT)
    step_index: int | None = None
    interval_index: int | None = None
    artifact_key: str | None = Field(None, description="where the interval's evidence is stored")


class MeasureResult(_Model):
    results: list[MeasurementResult] = Field(default_factory=list)
    artifact_key: str | None = None


# ---------------------------------------------------------------- pure helpers
def check(value: float, ok: Success) -> tuple[bool, str]:
    """Whether ``value`` meets ``ok`` (an effective success condition), and why not."""
    if not math.isfinite(value):
        return False, f"value {value} is not finite"
    if ok.equals is not None and value != ok.equals:
        return False, f"value {value:g} != {ok.equals:g}"
    if ok.min is not None and value < ok.min:
        return False, f"value {value:g} < min {ok.min:g}"
    if ok.max is not None and value > ok.max:
        return False, f"value {value:g} > max {ok.max:g}"
    return True, f"value {value:g}"


_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def last_number(text: str) -> float | None:
    """The last number printed in ``text`` (None when there is none)."""
    found = _NUMBER.findall(text)
    return float(found[-1]) if found else None


def as_number(value: object) -> float | None:
    """A JSON value as a number: numbers, numeric strings and booleans (1/0); else None."""
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None
