"""Activities of the deployment and rollback workflows: spec validation,
platform operations (dispatched to the platform named by the spec), canary
analysis windows and the no-op used by benchmarks. Ledger activities live in
:mod:`activities.ledger`. Platform errors are raised as they are (``CodeError``s); the
worker's :class:`~activities.interceptor.ErrorInterceptor` turns them into
``ApplicationError(type=<class name>, non_retryable=not retryable)``."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from temporalio import activity

from activities.artifacts import ArtifactStore
from activities.platform.base import Platform
from activities.secrets import SecretSource
from activities.settings import Settings
from code_foundation.errors import SpecError
from code_foundation.names import A
from workflows.models import (
    AnalyseInput,
    AnalysisResult,
    ApplyVersionInput,
    ApplyVersionResult,
    DescribeInput,
    DescribeResult,
    NoopInput,
    RetireVersionInput,
    RetireVersionResult,
    SetTrafficInput,
    SetTrafficResult,
    ValidateInput,
    ValidateResult,
)
from workflows.spec import DeploymentSpec


@contextlib.asynccontextmanager
async def heartbeating(every: float = 5.0) -> AsyncIterator[None]:
    async def beat() -> None:
        while True:
            activity.heartbeat()
            await asyncio.sleep(every)

    task = asyncio.create_task(beat())
    try:
        yield
    finally:
        task.cancel()


class DeployActivities:
    def __init__(self, settings: Settings, platforms: dict[str, Platform] | None = None) -> None:
        self.settings = settings
        self._platforms: dict[str, Platform] = platforms or {}
        self._secrets: SecretSource | None = None
        self._analysis_store: ArtifactStore | None = None

    def secrets(self) -> SecretSource:
        from activities.secrets import SecretResolver

        if self._secrets is None:
            self._secrets = SecretResolver.from_settings(self.settings)
        return self._secrets

    def platform(self, name: str, cluster: str | None = None) -> Platform:
        key = f"{name}@{cluster}" if cluster else name  # one client per named cluster
        if key not in self._platforms:
            if name == "local":
                from activities.platform.clusters import agent_url
                from activities.platform.local import LocalPlatform

                self._platforms[key] = LocalPlatform(
                    agent_url(self.settings, cluster), secrets=self.secrets()
                )
            elif name == "kubernetes":
                from activities.platform.clusters import kube_settings
                from activities.platform.kubernetes import platform_from_settings

                # a cluster names its kube context (unknown: ConfigError naming the known)
                self._platforms[key] = platform_from_settings(kube_settings(self.settings, cluster))
            else:
                raise SpecError(
                    "the deployment spec",
                    [f"platform: unknown platform {name!r} (local or kubernetes)"],
                )
        return self._platforms[key]

    # ---------------------------------------------------------------- validate
    @activity.defn(name=A.VALIDATE_SPEC)
    async def validate(self, inp: ValidateInput) -> ValidateResult:
        problems, warnings = await asyncio.to_thread(validate_spec, inp.spec)  # may ask Prometheus
        if inp.spec.artifact.secrets and not problems:
            problems += await self.check_secrets(inp.spec)
        return ValidateResult(ok=not problems, violations=problems, warnings=warnings)

    async def check_secrets(self, spec: DeploymentSpec) -> list[str]:
        """Resolve every reference once so a wrong path fails before anything is applied.
        Values are dropped at once; only the reference is ever named."""
        from activities.secrets import SecretError, SecretStoreUnavailable

        problems = []
        for env_name, ref in spec.artifact.secrets.items():
            try:
                await self.secrets().aresolve({env_name: ref})
            except SecretStoreUnavailable:
                raise  # retryable: the store is down, the reference may be fine
            except SecretError as exc:
                problems.append(f"artifact.secrets.{env_name}: {type(exc).__name__}: {exc}")
        return problems

    # ---------------------------------------------------------------- platform
    @activity.defn(name=A.PLATFORM_APPLY)
    async def apply_version(self, inp: ApplyVersionInput) -> ApplyVersionResult:
        async with heartbeating():
            return await self.platform(inp.spec.platform, inp.spec.cluster).apply_version(inp)

    @activity.defn(name=A.PLATFORM_TRAFFIC)
    async def set_traffic(self, inp: SetTrafficInput) -> SetTrafficResult:
        async with heartbeating(every=2.0):
            return await self.platform(inp.platform, inp.cluster).set_traffic(inp)

    @activity.defn(name=A.PLATFORM_RETIRE)
    async def retire_version(self, inp: RetireVersionInput) -> RetireVersionResult:
        async with heartbeating(every=2.0):
            return await self.platform(inp.platform, inp.cluster).retire_version(inp)

    @activity.defn(name=A.PLATFORM_DESCRIBE)
    async def describe(self, inp: DescribeInput) -> DescribeResult:
        return await self.platform(inp.platform, inp.cluster).describe(inp)

    # ---------------------------------------------------------------- analysis
    @activity.defn(name=A.ANALYSE)
    async def analyse(self, inp: AnalyseInput) -> AnalysisResult:
        # thresholds or Kayenta-style judge, provenance stored: activities/analysis/
        from activities.analysis import analyse_activity

        return await analyse_activity(
            inp, settings=self.settings, platform=self.platform, store=self.analysis_store()
        )

    def analysis_store(self) -> ArtifactStore:
        """Where analysis records go (created on first use, then kept)."""
        if self._analysis_store is None:
            from activities.artifacts import store_from_settings

            self._analysis_store = store_from_settings(self.settings)
        return self._analysis_store

    # ---------------------------------------------------------------- bench
    @activity.defn(name=A.NOOP)
    async def noop(self, inp: NoopInput) -> NoopInput:
        return inp


def validate_spec(spec: DeploymentSpec) -> tuple[list[str], list[str]]:
    """Checks that need the machine (paths, executables) or rust_core's policy."""
    problems: list[str] = []
    warnings: list[str] = []
    art = spec.artifact
    if spec.platform == "local":
        if not art.command:
            problems.append("artifact.command: the local platform runs a command; set it")
        else:
            workdir = Path(art.workdir) if art.workdir else Path.cwd()
            if not workdir.is_dir():
                problems.append(f"artifact.workdir: {workdir} is not a directory")
            exe = art.command[0]
            if exe != "{python}" and shutil.which(exe) is None and not (workdir / exe).exists():
                problems.append(f"artifact.command[0]: {exe!r} is not an executable on PATH")
            for arg in art.command[1:]:
                if arg.endswith(".py") and not os.path.isabs(arg) and not (workdir / arg).exists():
                    problems.append(f"artifact.command: {arg} not found in {workdir}")
    else:
        try:
            import rust_core
            from activities.platform.kubernetes import render_manifests

            text = render_manifests(spec)
            labels = list(spec.labels)
            for v in rust_core.validate_manifests(text, required_labels=labels):
                problems.append(f"{v.rule_id} {v.kind}/{v.name} {v.path}: {v.message}")
        except ImportError as exc:
            problems.append(f"kubernetes platform unavailable: {exc}")
    for env_name, ref in art.secrets.items():
        if ref.split(":", 1)[0] not in ("vault", "env", "file"):
            problems.append(
                f"artifact.secrets.{env_name}: unknown secret reference scheme in {ref!r}"
            )
    from activities.metrics.validate import validate_queries  # PromQL parsed by Prometheus

    promql_problems, promql_warnings = validate_queries(spec)
    from activities.analysis.measure import measurement_problems  # targets, job executables

    problems += measurement_problems(spec)
    return problems + promql_problems, warnings + promql_warnings


def deploy_activities(settings: Settings) -> list[Callable[..., Any]]:
    acts = DeployActivities(settings)
    out: list[Callable[..., Any]] = [
        acts.validate,
        acts.apply_version,
        acts.set_traffic,
        acts.retire_version,
        acts.describe,
        acts.analyse,
        acts.noop,
    ]
    from activities.ledger import Ledger, LedgerActivities

    ledger = LedgerActivities(Ledger(settings.effective_ledger_url()))
    out += [ledger.record, ledger.last_known_good]
    return out
