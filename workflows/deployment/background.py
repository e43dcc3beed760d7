"""Background analysis of a canary (Argo Rollouts' strategy-level ``analysis:``): it runs
alongside the steps from ``start_at_step`` until the steps end, in passes of ``count``
intervals (each pass an :class:`~workflows.analysis.AnalysisRun` with its own step
record, ``background analysis (pass N)``, that does not move the current step), and
the moment a pass fails the steps are cancelled and the failure — prefixed
``background analysis:`` and of the analysis's own type (``AnalysisFailed``...) — ends
the rollout, which compensates. When the steps end first, the running pass is stopped
and its record closed ``ok``.

Only a spec with ``strategy.canary.analysis`` gets here (without it the canary runs its
steps exactly as before: histories replay unchanged). Deterministic: tasks on the
workflow's own event loop; cancelling one cancels its timer or activity."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from workflows.analysis import AnalysisRun
    from workflows.deployment.host import DeploymentHost
    from workflows.models import StepRecord
    from workflows.spec import BackgroundAnalysis, DeploymentSpec


@dataclass
class Progress:
    """The step the canary is at (written by the steps, read by the analysis)."""

    step: int = -1


Steps = Callable[[DeploymentHost, DeploymentSpec, str, Progress], Awaitable[None]]


async def alongside(
    host: DeploymentHost,
    spec: DeploymentSpec,
    stable: str,
    analysis: BackgroundAnalysis,
    steps: Steps,
) -> None:
    """Run ``steps`` with ``analysis`` beside them; whichever fails first ends both."""
    at = Progress()
    main = asyncio.ensure_future(steps(host, spec, stable, at))
    bg = asyncio.ensure_future(_passes(host, spec, stable, analysis, at))
    try:
        await workflow.wait([main, bg], return_when=asyncio.FIRST_COMPLETED)
        if bg.done() and not main.done():
            main.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await main
            bg.result()  # raises the analysis failure
        await main  # the steps' own outcome (or failure)
    finally:
        for task in (main, bg):
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task


async def _passes(
    host: DeploymentHost,
    spec: DeploymentSpec,
    stable: str,
    a: BackgroundAnalysis,
    at: Progress,
) -> None:
    await workflow.wait_condition(lambda: at.step >= a.start_at_step)
    n = 0
    while True:
        n += 1
        rec = StepRecord(
            index=at.step,
            kind="analysis",
            description=f"background analysis (pass {n})",
            started_at=workflow.now(),
        )
        host.progress.steps.append(rec)
        try:
            await AnalysisRun(host, a, spec, stable, at.step, rec).run()
        except asyncio.CancelledError:
            host.end_step(rec, "ok", f"stopped when the steps ended (pass {n})")
            raise
        except ApplicationError as err:
            raise ApplicationError(
                f"background analysis: {err.message}", type=err.type, non_retryable=True
            ) from None
