"""The chaos experiment model and its loader.

An experiment (YAML/JSON, or a Chaos Toolkit file translated by
:mod:`chaos.ctk` and validated here) has a title, tags, configuration (``${name}`` is substituted
into every string), a steady-state hypothesis (HTTP probes with tolerances), a
method (fault actions, probes and pauses), rollbacks and controls (how long the
fault is held, how often the steady state is probed, abort conditions). Faults
come from :mod:`chaos.catalogue`; targets are blast-radius selectors
(:mod:`chaos.blast`). Every problem is reported with its location through
:class:`code_foundation.errors.SpecError`. Pure except :func:`load_experiment`,
which reads the file it is given.

A configuration value ``{type: endpoint, service: S, environment: E}`` is the
service's router endpoint on the local platform, looked up through the ``endpoints``
callable the caller passes (``codectl`` asks the agent); without one (validation
only) it stands for :data:`UNRESOLVED_ENDPOINT`."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from chaos.blast import merge_protected, protection_problems
from chaos.catalogue import CATALOGUE, ROLLBACK_ACTIONS, check_params
from chaos.ctk import chaostoolkit_to_native
from chaos.k8s_probes import probe_target_problem
from chaos.tolerance import StatusTolerance, Tolerance
from code_foundation.durations import Duration
from code_foundation.errors import SpecError
from code_foundation.notify_ref import NotifyRef

_NAME = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
_MODE = re.compile(r"^(one|all|fixed\((\d+)\)|percent\((\d+(?:\.\d+)?)\))$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, validate_default=True)


class Selector(_Model):
    """Which targets a fault may hit: selectors plus a blast-radius mode."""

    platform: Literal["local", "kubernetes"] = "local"
    service: str = Field(pattern=_NAME)
    environment: str = Field(pattern=_NAME)
    version: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    mode: str = Field("one", description="one | all | fixed(n) | percent(p)")

    @field_validator("mode")
    @classmethod
    def _mode(cls, v: str) -> str:
        m = _MODE.match(v.replace(" ", ""))
        if not m:
            raise ValueError(f"mode {v!r} must be one, all, fixed(n) or percent(p)")
        if m.group(2) is not None and int(m.group(2)) < 1:
            raise ValueError("fixed(n) needs n >= 1")
        if m.group(3) is not None and not 0 < float(m.group(3)) <= 100:
            raise ValueError("percent(p) needs 0 < p <= 100")
        return v.replace(" ", "")

    def parsed_mode(self) -> tuple[str, float]:
        m = _MODE.match(self.mode)
        if m is None:  # validated above; a model_construct()ed selector may still be wrong
            raise ValueError(f"mode {self.mode!r} must be one, all, fixed(n) or percent(p)")
        if m.group(2) is not None:
            return "fixed", float(m.group(2))
        if m.group(3) is not None:
            return "percent", float(m.group(3))
        return m.group(1), 0.0


class HttpProbe(_Model):
    """An HTTP probe of a loopback URL with a tolerance (default: status 200)."""

    name: str = Field(min_length=1)
    url: str
    method: Literal["GET", "HEAD", "POST", "PUT", "DELETE"] = "GET"
    headers: dict[str, str] = Field(default_factory=dict)
    body: str | None = None
    timeout: Duration = Field(default=timedelta(seconds=5))
    requests: int = Field(1, ge=1, le=1000, description="calls per probe (slo tolerance)")
    tolerance: Tolerance = Field(default_factory=lambda: StatusTolerance())

    @field_validator("url")
    @classmethod
    def _loopback(cls, v: str) -> str:
        problem = probe_target_problem(v)  # allowed_targets, or a k8s:// check
        if problem:
            raise ValueError(problem)
        return v


class Pauses(_Model):
    before: Duration = Field(default=timedelta(seconds=0))
    after: Duration = Field(default=timedelta(seconds=0))


class Action(_Model):
    """Inject a catalogued fault on the targets chosen by ``target``."""

    name: str = Field(min_length=1)
    fault: str
    target: Selector
    params: dict[str, Any] = Field(default_factory=dict)
    pauses: Pauses = Field(default_factory=lambda: Pauses())

    @model_validator(mode="after")
    def _catalogued(self) -> Action:
        problems = check_params(self.fault, self.params)
        if problems:
            raise ValueError("; ".join(problems))
        fk = CATALOGUE[self.fault]
        if fk.platform != self.target.platform:
            raise ValueError(
                f"fault {self.fault!r} is a {fk.platform} fault but the target platform is "
                f"{self.target.platform!r}"
            )
        return self


class RollbackAction(_Model):
    """An explicit rollback (the reverts of injected faults always run anyway)."""

    name: str = Field(min_length=1)
    action: Literal["restore", "remove_faults"]
    target: Selector

    @field_validator("action")
    @classmethod
    def _known(cls, v: str) -> str:
        if v not in ROLLBACK_ACTIONS:
            raise ValueError(f"unknown rollback action {v!r}")
        return v


class MethodStep(_Model):
    """Exactly one of ``action``, ``probe`` or ``pause``."""

    action: Action | None = None
    probe: HttpProbe | None = None
    pause: Duration | None = None

    @model_validator(mode="after")
    def _one(self) -> MethodStep:
        given = [k for k in ("action", "probe", "pause") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("each method step needs exactly one of action, probe, pause")
        return self


class SteadyState(_Model):
    title: str = "steady state"
    probes: list[HttpProbe] = Field(min_length=1)


class Controls(_Model):
    """How the fault window runs and when it is cut short."""

    duration: Duration = Field(
        default=timedelta(seconds=30), description="how long faults are held while probing"
    )
    probe_interval: Duration = Field(default=timedelta(seconds=5))
    abort_on_probe_failure: bool = Field(
        True, description="a steady-state probe out of tolerance during the fault aborts"
    )
    slo_objective: float = Field(0.99, gt=0, lt=1)
    abort_burn_rate: float | None = Field(
        None, gt=0, description="abort when the error-rate burn over burn_window ticks exceeds it"
    )
    burn_window: int = Field(3, ge=1, le=100)
    rollback_attempts: int = Field(5, ge=1, le=100)
    rollback_timeout: Duration = Field(default=timedelta(seconds=60))

    @model_validator(mode="after")
    def _positive(self) -> Controls:
        if self.probe_interval <= timedelta(0):
            raise ValueError("controls.probe_interval must be positive")
        if self.duration < timedelta(0):
            raise ValueError("controls.duration cannot be negative")
        return self


class Protected(_Model):
    services: list[str] = Field(default_factory=list)
    environments: list[str] = Field(default_factory=list)


class Experiment(_Model):
    title: str = Field(min_length=1)
    description: str = ""
    tags: list[str] = Field(default_factory=list)
    configuration: dict[str, str | int | float | bool] = Field(default_factory=dict)
    seed: int = Field(0, description="blast-radius selection seed (same seed, same targets)")
    protected: Protected = Field(default_factory=lambda: Protected())
    steady_state: SteadyState | None = None
    method: list[MethodStep] = Field(min_length=1)
    rollbacks: list[RollbackAction] = Field(default_factory=list)
    controls: Controls = Field(default_factory=lambda: Controls.model_validate({}))
    source: str = Field("", description="file it was loaded from (informational)")
    notifications: NotifyRef | None = Field(None, description="sinks (by name) told of the run")

    @model_validator(mode="after")
    def _unique_and_protected(self) -> Experiment:
        names = [s.action.name for s in self.method if s.action]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"action names must be unique (duplicated: {', '.join(dup)})")
        problems: list[str] = []
        for i, step in enumerate(self.method):
            if step.action:
                problems += [
                    f"method[{i}] ({step.action.name}): {p}"
                    for p in protection_problems(step.action.target, self.protected)
                ]
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def actions(self) -> list[Action]:
        return [s.action for s in self.method if s.action is not None]


# --------------------------------------------------------------- loading
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_.-]*)\}")


Endpoints = Callable[[str, str], str]
"""(service, environment) -> endpoint URL; raises ValueError saying why there is none."""
UNRESOLVED_ENDPOINT = "http://127.0.0.1"


def resolve_configuration(
    raw: Mapping[str, Any],
    environ: Mapping[str, str] | None = None,
    where: str = "configuration",
    endpoints: Endpoints | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """Inline values stay; ``{type: env, key: K[, default: D]}`` reads the environment;
    ``{type: endpoint, service: S, environment: E}`` asks ``endpoints``."""
    env = os.environ if environ is None else environ
    out: dict[str, Any] = {}
    problems: list[str] = []
    for name, value in raw.items():
        if isinstance(value, dict) and value.get("type") == "endpoint":
            svc, e = value.get("service"), value.get("environment")
            if not isinstance(svc, str) or not isinstance(e, str):
                problems.append(f"{where}.{name}: an endpoint names its service and environment")
            elif endpoints is None:
                out[name] = UNRESOLVED_ENDPOINT
            else:
                try:
                    out[name] = endpoints(svc, e)
                except ValueError as exc:
                    out[name] = UNRESOLVED_ENDPOINT  # one problem, not one per use
                    problems.append(f"{where}.{name}: {exc}")
        elif isinstance(value, dict):
            if value.get("type") == "env" and isinstance(value.get("key"), str):
                if value["key"] in env:
                    out[name] = env[value["key"]]
                elif "default" in value:
                    out[name] = value["default"]
                else:
                    problems.append(
                        f"{where}.{name}: environment variable {value['key']} is not set"
                    )
            else:
                problems.append(
                    f"{where}.{name}: only inline values, {{type: env, key: ...}} and "
                    "{type: endpoint, service: ..., environment: ...} are supported"
                )
        elif isinstance(value, str | int | float | bool):
            out[name] = value
        else:
            problems.append(f"{where}.{name}: must be a string, number, boolean or env lookup")
    return out, problems


def substitute(data: Any, config: Mapping[str, Any], where: str, problems: list[str]) -> Any:
    """Replace ``${name}`` in every string; a whole-string reference keeps the value's type."""
    if isinstance(data, str):
        whole = _VAR.fullmatch(data)
        if whole and whole.group(1) in config:
            return config[whole.group(1)]

        def rep(m: re.Match[str]) -> str:
            if m.group(1) not in config:
                problems.append(f"{where}: ${{{m.group(1)}}} is not in configuration")
                return m.group(0)
            return str(config[m.group(1)])

        return _VAR.sub(rep, data)
    if isinstance(data, list):
        return [substitute(v, config, f"{where}[{i}]", problems) for i, v in enumerate(data)]
    if isinstance(data, dict):
        return {k: substitute(v, config, f"{where}.{k}", problems) for k, v in data.items()}
    return data


def _loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def parse_experiment(
    data: Any,
    source: str = "experiment",
    environ: Mapping[str, str] | None = None,
    endpoints: Endpoints | None = None,
) -> Experiment:
    """Validate a native experiment document; every problem is named."""
    if not isinstance(data, dict):
        raise SpecError(source, ["an experiment must be a mapping"])
    config, problems = resolve_configuration(
        data.get("configuration") or {}, environ, endpoints=endpoints
    )
    body = {k: v for k, v in data.items() if k != "configuration"}
    body = substitute(body, config, "$", problems)
    if problems:
        raise SpecError(source, problems)
    body["configuration"] = config
    body.setdefault("source", source)
    raw = body.get("protected") or {}
    if isinstance(raw, dict) and all(
        isinstance(raw.get(k, []), list) for k in ("services", "environments")
    ):
        given = SimpleNamespace(
            services=raw.get("services", []), environments=raw.get("environments", [])
        )
        body["protected"] = merge_protected(given, os.environ if environ is None else environ)
    try:
        return Experiment.model_validate(body)
    except ValidationError as e:
        raise SpecError(
            source,
            [
                f"{_loc(err['loc'])}: {err['msg'].removeprefix('Value error, ')}"
                for err in e.errors()
            ],
        ) from None


def is_chaostoolkit(data: Any) -> bool:
    if not isinstance(data, dict):
        return False
    if "steady-state-hypothesis" in data or "version" in data and "method" in data:
        return True
    method = data.get("method")
    return isinstance(method, list) and any(
        isinstance(s, dict) and ("provider" in s or "ref" in s or "type" in s) for s in method
    )


def load_experiment(
    path: str | Path, environ: Mapping[str, str] | None = None, endpoints: Endpoints | None = None
) -> Experiment:
    """Read a native or Chaos Toolkit experiment (YAML or JSON)."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as e:
        raise SpecError(str(p), [f"cannot read the file: {e.strerror}"]) from None
    try:
        data = json.loads(text) if p.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as e:
        raise SpecError(
            str(p), [f"not valid {'JSON' if p.suffix == '.json' else 'YAML'}: {e}"]
        ) from None
    if is_chaostoolkit(data):
        return import_chaostoolkit(data, str(p), environ, endpoints)
    return parse_experiment(data, str(p), environ, endpoints)


def import_chaostoolkit(
    data: dict[str, Any],
    source: str = "experiment",
    environ: Mapping[str, str] | None = None,
    endpoints: Endpoints | None = None,
) -> Experiment:
    """Chaos Toolkit document -> :class:`Experiment`, or :class:`SpecError` naming every
    refusal (the translation is :func:`chaos.ctk.chaostoolkit_to_native`)."""
    return parse_experiment(chaostoolkit_to_native(data, source), source, environ, endpoints)
