"""Crash trials on one stack: each trial releases the setup versions of a fresh service,
starts live client traffic through that service's router, starts the workflow under
test, SIGKILLs one process at the chosen crash point, waits for the supervisor to bring
it back and for the run to end, then checks it.

Contract: :func:`run_batch` starts one stack (``codectl dev --detach``), runs every
scenario it needs uncrashed first (a ``discovery`` run: its outcome is the reference and
its history gives the crash points), runs the trials in order, ends with ``codectl
down`` and returns one :class:`TrialResult` per trial. A trial is correct when

* ``outcome``: the run reached the outcome of the uncrashed run (which is the expected one);
* ``ledger``: the ledger's current release is the one version the platform runs, at 100%;
* ``once``: no idempotency key changed the platform twice, over every journal entry;
* ``orphans``: nothing labelled with the stack's state dir outlives ``codectl down``;
* ``traffic``: the live client saw no failed request (connection error or 5xx) except
  from a release that fails by design; required for kills of the agent or the worker,
  reported for the Temporal server."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.crash import points as cp
from tests.crash.scenarios import ENV, SCENARIOS, Scenario, deployed, result_class
from tests.crash.stack import CrashStack
from tests.platform.agent_proc import Traffic, journal_lines, keys_applied_twice

CHECKS = ("outcome", "ledger", "once", "orphans", "traffic")


@dataclass
class Trial:
    scenario: str
    point: cp.CrashPoint | str  # a point, or its label, resolved after discovery
    process: str


@dataclass
class TrialResult:
    scenario: str
    point: str
    process: str
    outcome: str = ""
    checks: dict[str, bool] = field(default_factory=dict)
    detail: str = ""
    seconds: float = 0.0

    @property
    def correct(self) -> bool:
        return bool(self.checks) and all(self.checks.get(c, False) for c in CHECKS)


@dataclass
class Reference:
    outcome: str
    points: list[cp.CrashPoint]


async def _result(client: Any, workflow_id: str, cls: type, timeout: float) -> Any:
    """The run's result, retried while the Temporal server is away."""
    from temporalio.client import WorkflowFailureError

    from workflows.client import deployment_result
    from workflows.models import DeployResult
    from workflows.release_client import release_result
    from workflows.release_models import ReleaseResult

    handle = client.get_workflow_handle(workflow_id, result_type=cls)
    deadline = time.monotonic() + timeout
    while True:
        # a deployment that did not promote ends FAILED carrying its result
        waited: Any
        if cls is DeployResult:
            waited = deployment_result(handle)
        elif cls is ReleaseResult:  # a release that was not released, too
            waited = release_result(handle)
        else:
            waited = handle.result()
        try:
            return await asyncio.wait_for(waited, max(1.0, deadline - time.monotonic()))
        except WorkflowFailureError:
            raise
        except Exception:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)


async def _ledger_agrees(stack: CrashStack, svc: str) -> tuple[bool, str]:
    from activities.ledger.store import Ledger

    ledger = Ledger(stack.settings().effective_ledger_url())
    try:
        current = await asyncio.to_thread(ledger.current, svc, ENV)
    finally:
        ledger.close()
    d = await stack.describe(svc, ENV)
    live = {v: w for v, w in d["weights"].items() if w}
    version = current.version if current else None
    ok = version is not None and set(d["versions"]) == {version} and live == {version: 100}
    return ok, f"ledger={version} platform={sorted(d['versions'])} weights={live}"


class Runner:
    """One stack and the trials run on it (services ``c1``, ``c2``, ... and ``d*``)."""

    def __init__(self, stack: CrashStack, log: Callable[[str], None] = print) -> None:
        self.stack = stack
        self.log = log
        self.refs: dict[str, Reference] = {}
        self.n = 0

    async def run(
        self, sc: Scenario, point: cp.CrashPoint | None, process: str | None
    ) -> TrialResult:
        self.n += 1
        svc = f"{'d' if point is None else 'c'}{self.n}"
        label = point.label if point else "none"
        out = TrialResult(sc.name, label, process or "-")
        t0 = time.monotonic()
        client = await self.stack.client()
        for s in sc.setup_specs(svc):
            await deployed(self.stack, s)
        load = Traffic(await self.stack.endpoint(svc, ENV), rate=20.0)
        runner = asyncio.create_task(load.run())
        journal = cp.Journal(self.stack.agent_state)
        try:
            handle = await sc.start(self.stack, svc)
            if point is not None and process is not None:
                await cp.wait_for(client, handle.id, point, journal)
                self.stack.kill(process)
                await self.stack.wait_back(process)
            res = await _result(client, handle.id, result_class(sc.result_type), 240)
            await asyncio.sleep(0.5)
        finally:
            load.stop()
            await runner
        out.outcome = sc.outcome(res)
        if point is None:  # the reference run: its history gives the crash points
            acts = await cp.scheduled(client, handle.id)
            self.refs[sc.name] = Reference(out.outcome, cp.discover(acts, journal.begins()))
        ref = self.refs[sc.name].outcome
        out.checks["outcome"] = out.outcome == ref == sc.expected
        out.checks["ledger"], ledger = await _ledger_agrees(self.stack, svc)
        twice = keys_applied_twice(journal_lines(self.stack.agent_state))
        out.checks["once"] = not twice
        failed = [r for r in Traffic.failed(load.results) if r[2] != sc.bad_version]
        out.checks["traffic"] = process == "temporal" or not failed
        out.detail = f"{out.outcome}; {ledger}; {len(load.results)} requests, {len(failed)} failed"
        if twice:
            out.detail += f"; applied twice: {twice}"
        out.seconds = time.monotonic() - t0
        return out

    async def reference(self, name: str) -> Reference:
        if name not in self.refs:
            res = await self.run(SCENARIOS[name], None, None)
            if not res.checks["outcome"]:
                raise RuntimeError(f"uncrashed {name} run: {res.detail} (want {res.outcome})")
            self.log(f"  {name}: uncrashed {res.outcome}, {len(self.refs[name].points)} points")
        return self.refs[name]


def _broken(t: Trial, why: str) -> TrialResult:
    label = t.point if isinstance(t.point, str) else t.point.label
    r = TrialResult(t.scenario, label, t.process, detail=why[:300])
    r.checks = {"outcome": False}
    return r


async def _started(state: Path, attempts: int = 3) -> CrashStack | str:
    """A started stack; a port taken between choosing and binding it (other stacks'
    routers and instances pick free ports too) means a new try on new ports."""
    why = ""
    for i in range(attempts):
        stack = CrashStack(state if i == 0 else state.with_name(f"{state.name}-{i}"))
        try:
            await stack.up()
            return stack
        except Exception as exc:  # noqa: BLE001 - retried, then reported as the batch's failure
            why = f"stack did not start: {exc!r}"[:300]
            await stack.down()
    return why


async def run_batch(
    state: Path,
    plan: Callable[[dict[str, Reference]], list[Trial]] | list[Trial],
    scenarios: list[str],
    log: Callable[[str], None] = print,
    refs: dict[str, Reference] | None = None,
) -> list[TrialResult]:
    """Run trials on one stack. ``plan``: the trials, or a function of the references
    (crash points by scenario) that chooses them; ``refs``: references from another
    stack (``scenarios`` are run uncrashed here first)."""
    results: list[TrialResult] = []
    stack = await _started(state)
    if isinstance(stack, str):  # no stack: every trial of the batch is incorrect
        if callable(plan):
            raise RuntimeError(stack)
        return [_broken(t, stack) for t in plan]
    try:
        runner = Runner(stack, log)
        runner.refs.update(refs or {})
        for name in scenarios:
            await runner.reference(name)
        trials = plan(runner.refs) if callable(plan) else plan
        for t in trials:
            point = t.point
            if isinstance(point, str):
                point = next(p for p in runner.refs[t.scenario].points if p.label == point)
            try:
                r = await runner.run(SCENARIOS[t.scenario], point, t.process)
            except Exception as exc:  # noqa: BLE001 - a trial that breaks is an incorrect trial
                r = _broken(Trial(t.scenario, point, t.process), repr(exc))
            results.append(r)
            mark = "ok" if all(r.checks.get(c) for c in CHECKS if c != "orphans") else "FAIL"
            log(f"  {mark} {r.scenario} | {r.point} | {r.process} ({r.seconds:.1f}s) {r.detail}")
    finally:
        orphans = await stack.down()
    for r in results:
        r.checks["orphans"] = not orphans
        if orphans:
            r.detail += f"; orphans after down: {orphans}"
    return results
