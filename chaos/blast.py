"""Blast radius: which concrete targets a fault hits, and what may never be hit.

* ``instance`` faults (kill, pause, delete pod) choose among the instances
  the platform reports for the selector (service, environment, optional
  version, labels) using the mode ``one | all | fixed(n) | percent(p)``
  (percent rounds up, so at least one). The choice is a pure function of the
  candidate set and ``(seed, action name)``: the same seed gives the same
  targets in a dry run, in the workflow and on replay.
* ``route`` faults act on the router of the service/environment (optionally
  one version); ``host`` faults on the host running it. They have one target.
* Protected services/environments (the experiment's ``protected`` plus the
  engine-wide ``CODE_CHAOS_PROTECTED_SERVICES`` /
  ``CODE_CHAOS_PROTECTED_ENVIRONMENTS``, comma separated; default protected
  environments: ``production,prod``) are refused before anything is injected,
  in the client, in the workflow and again in the inject activity.
Pure: safe in the workflow sandbox."""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

DEFAULT_PROTECTED_ENVIRONMENTS = ("production", "prod")


class Target(BaseModel):
    """One concrete thing a fault acts on."""

    model_config = ConfigDict(extra="forbid")

    platform: str = "local"
    unit: str = "instance"
    service: str
    environment: str
    version: str | None = None
    index: int | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    name: str | None = Field(default=None, description="platform name, e.g. the pod name")

    @property
    def id(self) -> str:
        v = self.version or "*"
        tail = f"#{self.index}" if self.index is not None else ""
        pod = f" ({self.name})" if self.name else ""
        return f"{self.platform}:{self.service}/{self.environment}/{v}{tail}{pod}"


def _matches(c: Target, selector: Any) -> bool:
    if c.service != selector.service or c.environment != selector.environment:
        return False
    if selector.version is not None and c.version != selector.version:
        return False
    return all(c.labels.get(k) == v for k, v in selector.labels.items())


def count_for_mode(mode: str, n: float, available: int) -> int:
    if available <= 0:
        return 0
    if mode == "one":
        return 1
    if mode == "all":
        return available
    if mode == "fixed":
        return min(int(n), available)
    return min(available, max(1, math.ceil(available * n / 100.0)))


def select_targets(
    unit: str, selector: Any, candidates: list[Target], seed: int, salt: str
) -> list[Target]:
    """The exact targets of one action (deterministic given ``seed`` and ``salt``)."""
    if unit != "instance":
        return [
            Target(
                platform=selector.platform,
                unit=unit,
                service=selector.service,
                environment=selector.environment,
                version=selector.version,
                labels=dict(selector.labels),
            )
        ]
    pool = sorted(
        (c for c in candidates if _matches(c, selector)),
        key=lambda c: (c.version or "", c.index if c.index is not None else -1, c.name or ""),
    )
    mode, n = selector.parsed_mode()
    k = count_for_mode(mode, n, len(pool))
    rng = random.Random(f"{seed}:{salt}")  # noqa: S311 - a reproducible choice, not a secret
    chosen = rng.sample(range(len(pool)), k)
    return [pool[i] for i in sorted(chosen)]


def merge_protected(experiment_protected: Any, environ: Mapping[str, str]) -> dict[str, list[str]]:
    """The experiment's protected lists plus the engine-wide ones from ``environ``."""

    def env_list(key: str, default: tuple[str, ...]) -> list[str]:
        raw = environ.get(key)
        if raw is None:
            return list(default)
        return [x.strip() for x in raw.split(",") if x.strip()]

    services = set(experiment_protected.services) | set(
        env_list("CODE_CHAOS_PROTECTED_SERVICES", ())
    )
    envs = set(experiment_protected.environments) | set(
        env_list("CODE_CHAOS_PROTECTED_ENVIRONMENTS", DEFAULT_PROTECTED_ENVIRONMENTS)
    )
    return {"services": sorted(services), "environments": sorted(envs)}


def combine_protected(
    engine: Mapping[str, list[str]], experiment_protected: Any
) -> dict[str, list[str]]:
    """The engine-wide protected lists (as the client sent them) plus the experiment's."""
    return {
        "services": sorted(set(engine.get("services", [])) | set(experiment_protected.services)),
        "environments": sorted(
            set(engine.get("environments", [])) | set(experiment_protected.environments)
        ),
    }


def protection_problems(target: Any, protected: Any) -> list[str]:
    """Why ``target`` (a selector or Target) may not be touched (empty when allowed)."""
    services = protected["services"] if isinstance(protected, dict) else protected.services
    envs = protected["environments"] if isinstance(protected, dict) else protected.environments
    problems = []
    if target.service in services:
        problems.append(f"service {target.service!r} is protected: no experiment may touch it")
    if target.environment in envs:
        problems.append(
            f"environment {target.environment!r} is protected: no experiment may touch it"
        )
    return problems
