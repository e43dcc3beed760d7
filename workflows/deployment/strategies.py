"""The rollout strategies of a deployment, after Argo Rollouts:

* ``canary``: the spec's steps in order — ``set_weight`` (traffic share of the new
  version), ``pause`` (timed, or until approved) and ``analysis`` (see
  :mod:`workflows.analysis`);
* ``blue_green``: the new version gets no traffic (a 5% preview share while a
  pre-promotion analysis runs), then, after an approval or the auto-promote delay,
  all of it at once; an optional scale-down delay follows;
* ``rolling``: the traffic moves in strides of ``max_surge`` replicas' share, with
  an optional pause between strides.

Lifecycle hooks (:mod:`~workflows.deployment.hooks`): ``confirm_traffic_increase``
before each weight increase, ``rollout`` after every step (nothing when none is
configured). Each strategy ends with the new version ready for promotion (the
workflow promotes);
a pause signal holds it between steps, an abort raises. Deterministic: every effect
goes through the :class:`~workflows.deployment.host.DeploymentHost`."""

from __future__ import annotations

import math

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.analysis import AnalysisRun
    from workflows.deployment import background, hooks
    from workflows.deployment.gates import pause_step
    from workflows.deployment.host import DeploymentHost, required
    from workflows.models import StepKind
    from workflows.spec import DeploymentSpec, PauseSpec, Step


def step_kind(step: Step) -> StepKind:
    """The record kind of one canary step."""
    if step.set_weight is not None:
        return "set_weight"
    return "pause" if step.pause else "analysis"


async def canary(host: DeploymentHost, spec: DeploymentSpec, stable: str) -> None:
    c = required(spec.strategy.canary, "strategy.canary")
    if c.analysis is not None:  # steps and background analysis side by side
        await background.alongside(host, spec, stable, c.analysis, _canary_steps)
    else:
        await _canary_steps(host, spec, stable, None)


async def _canary_steps(
    host: DeploymentHost, spec: DeploymentSpec, stable: str, at: background.Progress | None
) -> None:
    steps = required(spec.strategy.canary, "strategy.canary").steps
    weight = 0
    await host.traffic({stable: 100, spec.version: 0}, "canary-init")
    for i, step in enumerate(steps):
        await host.hold_if_paused()
        if at is not None:
            at.step = i  # the background analysis starts at its step
        if step.set_weight is not None and step.set_weight > weight:
            await hooks.run_point(host, "confirm_traffic_increase", i, step.set_weight)
        rec = host.begin_step(i, step_kind(step), step.describe())
        if step.set_weight is not None:
            weight = step.set_weight
            await host.traffic({stable: 100 - weight, spec.version: weight}, f"step{i}-weight")
            host.end_step(rec, "ok")
        elif step.pause is not None:
            await pause_step(host, step.pause, rec, f"step {i}")
        elif step.analysis is not None:
            # thresholds or Kayenta-style judge, Argo limits, decisions: workflows/analysis.py
            await AnalysisRun(host, step.analysis, spec, stable, i, rec).run()
        await hooks.run_point(host, "rollout", i, weight, rec)  # every step (none: no command)
        host.check_abort()


async def blue_green(host: DeploymentHost, spec: DeploymentSpec, stable: str) -> None:
    bg = required(spec.strategy.blue_green, "strategy.blue_green")
    await host.traffic({stable: 100, spec.version: 0}, "bg-preview")
    if bg.pre_promotion_analysis is not None:
        # preview traffic: a small share so analysis has data (the local router has no
        # preview port)
        await host.traffic({stable: 95, spec.version: 5}, "bg-preview-traffic")
        rec = host.begin_step(0, "analysis", "pre-promotion analysis")
        await AnalysisRun(host, bg.pre_promotion_analysis, spec, stable, 0, rec).run()
    if not bg.auto_promote:
        rec = host.begin_step(0, "pause", "pause until approved")
        await pause_step(
            host, PauseSpec(until_approved=True, timeout=spec.approvals.timeout), rec, "blue-green"
        )
    elif bg.auto_promote_after is not None:
        rec = host.begin_step(0, "pause", "auto-promote delay")
        await pause_step(host, PauseSpec(duration=bg.auto_promote_after), rec, "blue-green")
    await host.hold_if_paused()
    await hooks.run_point(host, "confirm_traffic_increase", 0, 100)
    rec = host.begin_step(0, "switch", f"switch all traffic to {spec.version}")
    await host.traffic({spec.version: 100, stable: 0}, "bg-switch")
    host.end_step(rec, "ok")
    await hooks.run_point(host, "rollout", 0, 100, rec)
    if bg.scale_down_delay.total_seconds() > 0:
        await host.sleep(bg.scale_down_delay)


async def rolling(host: DeploymentHost, spec: DeploymentSpec, stable: str) -> None:
    roll = required(spec.strategy.rolling, "strategy.rolling")
    stride = max(1, math.ceil(100 * roll.max_surge / spec.replicas))
    weight, i = 0, 0
    while weight < 100:
        await host.hold_if_paused()
        weight = min(100, weight + stride)
        await hooks.run_point(host, "confirm_traffic_increase", i, weight)
        rec = host.begin_step(i, "set_weight", f"roll to {weight}%")
        await host.traffic({stable: 100 - weight, spec.version: weight}, f"roll{i}")
        host.end_step(rec, "ok")
        await hooks.run_point(host, "rollout", i, weight, rec)
        if roll.step_pause.total_seconds() > 0 and weight < 100:
            await host.sleep(roll.step_pause)
        i += 1
