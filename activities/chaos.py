"""Activities of ``ChaosExperimentWorkflow``: discover targets, inject and revert
catalogued faults, run explicit rollbacks, probe the steady state (HTTP, or the
Kubernetes API for ``k8s://`` checks), store the journal, the report and the Chaos
Toolkit-format journal (``chaos/<id>/ctk/journal.json``). A revert or rollback that
found nothing in place answers ``outcome="nothing_to_revert"``
(:class:`activities.faults.NothingToRevert`).

Every mutation is idempotent (the key is workflow id + action + target):
inject twice finds the fault in place, revert twice finds it gone. The inject
activity re-checks protected services/environments (defence in depth) and
the probe activity re-checks the URL against ``allowed_targets``. Failures are the project's
errors (:class:`ProtectedTarget`, :class:`NonLoopbackProbe`, :class:`UnsupportedRollback`,
platform and artifact errors), their message prefixed with the action that failed; the
worker's :class:`~activities.interceptor.ErrorInterceptor` reports them as
``ApplicationError(type=<class name>, non_retryable=not retryable)``."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar, cast

import httpx
from temporalio import activity

from activities.faults import NothingToRevert
from activities.settings import Settings
from chaos.batch import BatchRun, offsets
from chaos.blast import merge_protected, protection_problems
from chaos.catalogue import CATALOGUE
from chaos.ctk_journal import CTK_JOURNAL, to_ctk_journal
from chaos.k8s_probes import is_k8s, probe_target_problem
from chaos.messages import (
    DiscoverInput,
    DiscoverResult,
    InjectInput,
    InjectResult,
    ProbeBatchInput,
    ProbeBatchResult,
    ProbeInput,
    ProbePhase,
    ProbeRecord,
    ProbeResult,
    ReportInput,
    ReportResult,
    RevertInput,
    RevertResult,
    RollbackInput,
)
from chaos.model import Protected
from chaos.report import render_markdown
from chaos.tolerance import Observation, evaluate
from code_foundation.errors import CodeError, TargetRefused
from code_foundation.names import CA

if TYPE_CHECKING:
    from activities.faults.kubernetes import KubernetesFaults
    from activities.faults.local import LocalFaults
    from chaos.model import HttpProbe

T = TypeVar("T")


class ProtectedTarget(CodeError):
    """The target is a protected service or environment (blast radius): nothing injected."""

    exit_code = 2


class NonLoopbackProbe(TargetRefused):
    """A steady-state probe URL is not a loopback address: the probe is not sent."""


class UnsupportedRollback(CodeError):
    """The experiment's rollback action is not implemented for its target platform."""

    exit_code = 2


async def _heartbeating(coro: Awaitable[T], every: float = 2.0) -> T:
    """Await ``coro`` while heartbeating (when running inside an activity)."""
    task = asyncio.ensure_future(coro)
    while True:
        done, _ = await asyncio.wait({task}, timeout=every)
        if done:
            return task.result()
        with contextlib.suppress(RuntimeError):
            activity.heartbeat()


def _result(detail: str) -> RevertResult:
    """A revert's detail as its result: a :class:`NothingToRevert` detail is the outcome
    ``nothing_to_revert`` (never injected, or already gone), not a revert."""
    if isinstance(detail, NothingToRevert):
        return RevertResult(detail=str(detail), outcome="nothing_to_revert")
    return RevertResult(detail=str(detail))


class ChaosActivities:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def _platform(self, name: str) -> LocalFaults | KubernetesFaults:
        if name == "kubernetes":
            from activities.faults.kubernetes import KubernetesFaults

            return KubernetesFaults(self.settings.kube_context)
        from activities.faults.local import LocalFaults

        return LocalFaults(self.settings.agent_url, self.settings.state_dir)

    async def _guard(self, what: str, fn: Callable[[], Awaitable[T]]) -> T:
        """Run ``fn`` heartbeating; a project error's message names the action (``what``)."""
        try:
            return await _heartbeating(fn())
        except CodeError as exc:
            exc.args = (f"{what}: {exc}",)
            raise

    @activity.defn(name=CA.DISCOVER)
    async def discover(self, inp: DiscoverInput) -> DiscoverResult:
        sel = inp.selector
        faults = self._platform(sel.platform)
        cands = await self._guard(
            f"discover {sel.service}/{sel.environment}",
            lambda: faults.candidates(sel.service, sel.environment),
        )
        return DiscoverResult(candidates=cands)

    @activity.defn(name=CA.INJECT)
    async def inject(self, inp: InjectInput) -> InjectResult:
        protected = merge_protected(
            Protected(**inp.protected) if inp.protected else Protected(), os.environ
        )
        problems = protection_problems(inp.target, protected)
        if problems:
            raise ProtectedTarget("; ".join(problems))
        kind = CATALOGUE[inp.action.fault]
        faults = self._platform(kind.platform)
        activity.logger.info("inject %s into %s (key %s)", inp.action.fault, inp.target.id, inp.key)
        handle = await self._guard(
            f"inject {inp.action.fault} into {inp.target.id}",
            lambda: faults.inject(inp.key, inp.action.fault, inp.target, inp.action.params),
        )
        return InjectResult(handle=handle)

    @activity.defn(name=CA.REVERT)
    async def revert(self, inp: RevertInput) -> RevertResult:
        kind = CATALOGUE[inp.fault]
        faults = self._platform(kind.platform)
        activity.logger.info("revert %s on %s (key %s)", inp.fault, inp.target.id, inp.key)
        detail = await self._guard(
            f"revert {inp.fault} on {inp.target.id}",
            lambda: faults.revert(inp.key, inp.fault, inp.target, inp.handle),
        )
        return _result(detail)

    @activity.defn(name=CA.ROLLBACK)
    async def rollback(self, inp: RollbackInput) -> RevertResult:
        rb = inp.rollback
        if rb.target.platform == "kubernetes" and rb.action == "remove_faults":
            k8s = cast("KubernetesFaults", self._platform("kubernetes"))
            sel = rb.target

            async def sweep() -> str:
                gone = await k8s.sweep(sel.environment, sel.service)
                msg = f"removed {len(gone)} chaos NetworkPolicy(ies): {', '.join(gone) or '-'}"
                return msg if gone else NothingToRevert(msg)

            return _result(await self._guard(f"rollback {rb.name}", sweep))
        if rb.target.platform != "local":
            raise UnsupportedRollback(
                f"rollback {rb.action!r} is only implemented for the local platform"
                " (kubernetes: remove_faults only)"
            )
        from activities.faults.local import LocalFaults
        from chaos.blast import Target

        faults = LocalFaults(self.settings.agent_url, self.settings.state_dir)
        key = f"{activity.info().workflow_id}:rollback:{rb.name}"
        sel = rb.target
        if rb.action == "restore":
            fn = lambda: faults.restore(sel.service, sel.environment, sel.version, key)  # noqa: E731
        else:
            tgt = Target(unit="route", service=sel.service, environment=sel.environment)
            fn = lambda: faults.remove_router_faults(tgt, None, None)  # noqa: E731
        return _result(await self._guard(f"rollback {rb.name}", fn))

    @activity.defn(name=CA.PROBE)
    async def probe(self, inp: ProbeInput) -> ProbeResult:
        p = inp.probe
        problem = probe_target_problem(p.url)  # allowed_targets
        if problem:
            raise NonLoopbackProbe(problem)
        record, obs = await self._probe_once(p, inp.phase)
        return ProbeResult(record=record, observation=obs)

    @activity.defn(name=CA.PROBE_BATCH)
    async def probe_batch(self, inp: ProbeBatchInput) -> ProbeBatchResult:
        """Probe rounds in real time at ``start + offset`` (heartbeating), judged as they
        come; stops at the first aborting round. Cancelled (a manual abort): the rounds
        so far come back, marked ``partial``."""
        for p in inp.probes:
            problem = probe_target_problem(p.url)  # allowed_targets
            if problem:
                raise NonLoopbackProbe(problem)
        run = BatchRun(inp)
        t0 = time.monotonic()
        try:
            for off in offsets(inp):
                while (left := t0 + off - time.monotonic()) > 0:
                    await asyncio.sleep(min(2.0, left))
                    activity.heartbeat(run.res.tally.rounds)
                rounds = asyncio.gather(*(self._probe_once(p, "during") for p in inp.probes))
                records = [rec for rec, _ in await _heartbeating(rounds)]
                activity.heartbeat(run.res.tally.rounds + 1)
                if run.add(records, time.time()):
                    break
        except asyncio.CancelledError:
            return run.result(partial=True)
        return run.result()

    async def _probe_once(self, p: HttpProbe, phase: ProbePhase) -> tuple[ProbeRecord, Observation]:
        started = datetime.now(UTC)
        obs = await self._observe(p)
        ok, detail = evaluate(p.tolerance, obs)
        record = ProbeRecord(
            name=p.name,
            phase=phase,
            ok=ok,
            detail=detail,
            started_at=started,
            finished_at=datetime.now(UTC),
            status=obs.status,
            latency_ms=round(obs.latency_ms, 2),
            requests=obs.requests,
            failures=obs.failures if p.tolerance.type == "slo" else (0 if ok else 1),
        )
        return record, obs

    async def _observe(self, p: HttpProbe) -> Observation:
        timeout = p.timeout.total_seconds()
        ok_status = getattr(p.tolerance, "ok_status", None)
        if is_k8s(p.url):  # a chaosk8s probe: ask the Kubernetes API, not HTTP
            from activities.faults.kubernetes import check

            return await check(cast("KubernetesFaults", self._platform("kubernetes")), p.url)
        obs = Observation()
        async with httpx.AsyncClient(
            timeout=timeout,
            follow_redirects=False,
            trust_env=False,
            verify=self.settings.tls_verify(),  # tls_ca_file / client cert / tls_insecure
        ) as client:
            for _ in range(p.requests):
                t0 = time.perf_counter()
                try:
                    resp = await client.request(
                        p.method,
                        p.url,
                        headers=p.headers,
                        content=p.body.encode() if p.body else None,
                    )
                    obs.status, obs.body, obs.error = resp.status_code, resp.text[:4096], None
                    bad = ok_status is not None and resp.status_code not in ok_status
                except httpx.HTTPError as e:
                    obs.status, obs.body, obs.error = None, "", f"{type(e).__name__}: {e}"[:300]
                    bad = True
                obs.latency_ms = max(obs.latency_ms, (time.perf_counter() - t0) * 1000.0)
                obs.requests += 1
                obs.failures += int(bad)
        return obs

    @activity.defn(name=CA.REPORT)
    async def report(self, inp: ReportInput) -> ReportResult:
        j = inp.journal
        prefix = f"chaos/{j.workflow_id}"
        json_key, md_key = f"{prefix}/journal.json", f"{prefix}/report.md"
        body = j.model_dump_json(indent=2).encode()
        md = render_markdown(j).encode()
        ctk = json.dumps(to_ctk_journal(j, platform=sys.platform), indent=2).encode()

        def put() -> None:
            from activities.artifacts import store_from_settings

            store = store_from_settings(self.settings)
            store.put(json_key, body, "application/json")
            store.put(md_key, md, "text/markdown")
            store.put(CTK_JOURNAL.format(prefix=prefix), ctk, "application/json")  # CTK format

        await asyncio.to_thread(put)
        return ReportResult(json_key=json_key, md_key=md_key)


def chaos_activities(settings: Settings) -> list[Callable[..., Any]]:
    acts = ChaosActivities(settings)
    return [
        acts.discover,
        acts.inject,
        acts.revert,
        acts.rollback,
        acts.probe,
        acts.probe_batch,
        acts.report,
    ]
