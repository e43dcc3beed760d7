"""The ``analysis.measure`` activity: one interval's Web and Job measurements of an
analysis step (see :mod:`workflows.measure_spec`), and :func:`measurement_problems`
for ``codectl validate``.

* web: the URL must pass :func:`code_foundation.targets.target_problem` (the
  ``allowed_targets`` setting); secret headers are resolved here (the hooks' resolver,
  :class:`activities.hooks.HookActivities`) and masked in every excerpt; the value is
  the number at ``json_path`` (the hooks' path syntax, :func:`workflows.hooks_spec.lookup`).
* job: ``argv`` runs directly (``asyncio.create_subprocess_exec``, never a shell) with
  ``PATH``/``HOME``, the job's env and ``CODE_MEASURE_{SERVICE,ENVIRONMENT,VERSION,STEP,
  INTERVAL}``; a timeout kills its process group; the value is the exit code or the
  last number on stdout.

Every measurement is an *answer* (``passed`` / ``failed`` / ``error`` with a message),
never an activity error: the workflow counts them against ``failure_limit``.

Evidence: each interval's measurements (the definitions and every value, status and
message) are stored beside the run's analysis records, as JSON (``code.measurements/v1``)
under :func:`measurement_key`; the key is on every result (the workflow's status Query
shows the results field by field). A store that fails raises (the activity retries)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import string
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from temporalio import activity

from activities.artifacts import ArtifactStore, store_from_settings
from activities.hooks import HookActivities, _kill, _tail, mask, split_secret
from activities.secrets import SecretError
from activities.settings import Settings
from code_foundation import targets
from code_foundation.names import A
from workflows.hooks_spec import EXCERPT_LIMIT, MISSING, excerpt, lookup
from workflows.measure_spec import (
    JobProvider,
    MeasuredMetric,
    MeasureInput,
    MeasurementResult,
    MeasureResult,
    WebProvider,
    as_number,
    check,
    last_number,
)
from workflows.spec import AnalysisSpec, DeploymentSpec

MEASUREMENTS_SCHEMA = "code.measurements/v1"
MEASUREMENTS_SUFFIX = ".measurements.json"


def measurement_key(workflow_id: str, run_id: str, step_index: int, interval_index: int) -> str:
    """``analysis/<workflow id>/<run id>/step<i>-interval<n>.measurements.json``: beside
    the interval's analysis record (:func:`activities.analysis.record_key`)."""
    return (
        f"analysis/{workflow_id}/{run_id}/step{step_index:02d}-interval{interval_index:03d}"
        + MEASUREMENTS_SUFFIX
    )


def evidence(
    inp: MeasureInput, results: list[MeasurementResult], workflow_id: str, run_id: str
) -> bytes:
    doc = {
        "schema": MEASUREMENTS_SCHEMA,
        "workflow_id": workflow_id,
        "run_id": run_id,
        "service": inp.service,
        "environment": inp.environment,
        "version": inp.version,
        "step_index": inp.step_index,
        "interval_index": inp.interval_index,
        "created_at": datetime.now(UTC).isoformat(),
        "measurements": [m.model_dump(mode="json") for m in inp.measurements],
        "results": [r.model_dump(mode="json") for r in results],
    }
    return json.dumps(doc, sort_keys=True).encode()


def _fields(inp: MeasureInput) -> dict[str, str]:
    return {
        "service": inp.service,
        "environment": inp.environment,
        "version": inp.version,
        "step": str(inp.step_index),
        "interval": str(inp.interval_index),
    }


class MeasureActivities:
    def __init__(
        self,
        settings: Settings,
        hooks: HookActivities | None = None,
        store: ArtifactStore | None = None,
    ) -> None:
        self.settings = settings
        self.hooks = hooks or HookActivities(settings)
        self._store = store

    @activity.defn(name=A.ANALYSIS_MEASURE)
    async def measure(self, inp: MeasureInput) -> MeasureResult:
        results = list(await asyncio.gather(*(self.one(m, inp) for m in inp.measurements)))
        info = activity.info()
        wid, run = info.workflow_id or "adhoc", info.workflow_run_id or "adhoc"
        key = measurement_key(wid, run, inp.step_index, inp.interval_index)
        for r in results:
            r.step_index, r.interval_index, r.artifact_key = inp.step_index, inp.interval_index, key
            activity.logger.info("measurement %s: %s %s", r.name, r.status, r.message)
        store = self._store or store_from_settings(self.settings)
        data = evidence(inp, results, wid, run)
        await asyncio.to_thread(store.put, key, data, "application/json")
        return MeasureResult(results=results, artifact_key=key)

    async def one(self, m: MeasuredMetric, inp: MeasureInput) -> MeasurementResult:
        t0 = time.monotonic()
        try:
            if m.provider.web is not None:
                value, text, err = await self._web(m.provider.web, inp)
            elif m.provider.job is not None:
                value, text, err = await self._job(m.provider.job, inp)
            else:  # the spec refuses a measurement without a provider
                value, text, err = None, "", "no provider"
        except SecretError as exc:
            value, text, err = None, "", str(exc)
        if err is not None or value is None:
            status, message = "error", err or "no value"
        else:
            ok, message = check(value, m.effective_success())
            status = "passed" if ok else "failed"
        return MeasurementResult(
            name=m.name,
            kind=m.kind,
            dry_run=m.dry_run,
            status=status,  # type: ignore[arg-type]
            value=value,
            message=message[:EXCERPT_LIMIT],
            duration_ms=round((time.monotonic() - t0) * 1000, 1),
            excerpt=excerpt(text),
        )

    # ------------------------------------------------------------ web
    async def _web(self, w: WebProvider, inp: MeasureInput) -> tuple[float | None, str, str | None]:
        problem = targets.target_problem(w.url, self.settings.allowed_targets, what="measurement")
        if problem:
            return None, "", problem
        split = {h: split_secret(v) for h, v in w.secret_headers.items()}
        values = await self.hooks._resolve({h: ref for h, (_p, ref) in split.items()})
        headers = dict(w.headers)
        headers.update({h: prefix + values[h] for h, (prefix, _r) in split.items()})
        secrets = list(values.values())
        content = None
        if w.body is not None:
            content = string.Template(w.body).safe_substitute(_fields(inp)).encode()
        timeout = w.timeout.total_seconds()
        try:
            async with httpx.AsyncClient(timeout=timeout, verify=self.settings.tls_verify()) as c:
                r = await c.request(w.method, w.url, content=content, headers=headers)
        except httpx.TimeoutException:
            return None, "", f"timed out after {timeout}s"
        except httpx.HTTPError as exc:
            return None, "", mask(f"{type(exc).__name__}: {exc}", secrets)
        body = mask(r.text, secrets)
        if not 200 <= r.status_code < 300:
            return None, body, f"status {r.status_code} is not 2xx"
        try:
            doc = json.loads(r.text)
        except ValueError:
            return None, body, f"body is not JSON (json_path {w.json_path})"
        got = lookup(doc, w.json_path)
        if got is MISSING:
            return None, body, f"{w.json_path} not in the response"
        number = as_number(got)
        if number is None:
            return None, body, f"{w.json_path} is {got!r}, not a number"
        return number, body, None

    # ------------------------------------------------------------ job
    async def _job(self, j: JobProvider, inp: MeasureInput) -> tuple[float | None, str, str | None]:
        env: dict[str, str] = {k: os.environ[k] for k in ("PATH", "HOME") if k in os.environ}
        env.update({f"CODE_MEASURE_{k.upper()}": v for k, v in _fields(inp).items()})
        env.update(j.env)
        argv = [sys.executable if a == "{python}" else a for a in j.argv]
        timeout = j.timeout.total_seconds()
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                cwd=j.workdir or None,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,
            )
        except OSError as exc:
            return None, "", f"cannot run {argv[0]!r}: {exc.strerror}"
        try:
            out, err = await asyncio.wait_for(proc.communicate(), timeout)
        except (TimeoutError, asyncio.CancelledError) as exc:
            _kill(proc)
            await proc.wait()
            if isinstance(exc, asyncio.CancelledError):
                raise
            return None, "", f"timed out after {timeout}s"
        text = out.decode(errors="replace")
        shown = _tail(text + err.decode(errors="replace"))
        code = proc.returncode if proc.returncode is not None else -1
        if j.value == "exit_code":
            return float(code), shown, None
        if code != 0:
            return None, shown, f"exit code {code} (stdout_number needs exit code 0)"
        number = last_number(text)
        if number is None:
            return None, shown, "no number on stdout"
        return number, shown, None


# ---------------------------------------------------------------- validate
def analyses_of(spec: DeploymentSpec) -> list[tuple[str, AnalysisSpec]]:
    """Every analysis of a spec with the field path ``codectl validate`` names."""
    out: list[tuple[str, AnalysisSpec]] = []
    c = spec.strategy.canary
    if c is not None:
        for i, step in enumerate(c.steps):
            if step.analysis is not None:
                out.append((f"strategy.canary.steps[{i}].analysis", step.analysis))
        bg = getattr(c, "analysis", None)
        if isinstance(bg, AnalysisSpec):
            out.append(("strategy.canary.analysis", bg))
    b = spec.strategy.blue_green
    if b is not None and b.pre_promotion_analysis is not None:
        out.append(("strategy.blue_green.pre_promotion_analysis", b.pre_promotion_analysis))
    return out


def measurement_problems(spec: DeploymentSpec, settings: Settings | None = None) -> list[str]:
    """Machine checks of every measurement: web targets against ``allowed_targets``,
    job executables on PATH (or in the workdir) and workdirs that exist."""
    allowed = settings.allowed_targets if settings is not None else None
    problems: list[str] = []
    for where, a in analyses_of(spec):
        for m in a.measurements:
            at = f"{where}.measurements.{m.name}"
            if m.provider.web is not None:
                problem = targets.target_problem(m.provider.web.url, allowed, what="measurement")
                if problem:
                    problems.append(f"{at}.provider.web.url: {problem}")
            elif m.provider.job is not None:
                j = m.provider.job
                workdir = Path(j.workdir) if j.workdir else Path.cwd()
                if j.workdir and not workdir.is_dir():
                    problems.append(f"{at}.provider.job.workdir: {workdir} is not a directory")
                exe = j.argv[0]
                if exe != "{python}" and shutil.which(exe) is None and not (workdir / exe).exists():
                    problems.append(f"{at}.provider.job.argv[0]: {exe!r} is not an executable")
    return problems


def measure_activities(settings: Settings) -> list[Callable[..., Any]]:
    return [MeasureActivities(settings).measure]
