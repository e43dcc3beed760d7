"""The analysis step of a deployment, as a helper the ``DeploymentWorkflow`` calls
(deterministic: timers, the ``analysis.run`` activity and the approval gate only).

Per interval: durable sleep, then one ``analysis.run`` activity over the window
(thresholds mode: that interval; judge mode: the growing window from the start of the
analysis, or the last ``lookback``). Rules, combining Argo Rollouts' AnalysisRun
limits with Kayenta's multi-interval rule:

* ``fail`` intervals beyond ``failure_limit`` end the analysis (rollback); in judge
  mode a ``fail`` is a score below ``marginal_threshold``, so with the default limit 0
  every earlier score must be >= marginal (Kayenta);
* the last judged interval must pass (score >= ``pass_threshold``): a ``marginal`` last
  interval follows ``on_marginal`` (default: pause for a human decision until
  ``decision_timeout``; ``approve`` continues, ``abort`` or no answer rolls back unless
  ``on_decision_timeout: continue``); a ``fail`` last interval fails;
* ``inconclusive`` intervals beyond ``inconclusive_limit`` follow ``on_inconclusive``;
* a metrics-backend error (after the activity's retries) is an *error* interval, not a
  failure: it is shown in ``status.last_analysis_error`` and the workflow's current
  details (Web UI) with the failing query; more than ``consecutive_error_limit`` in a
  row follow ``on_error`` (default rollback). An analysis without a single measurement
  follows ``on_error`` too;
* ``measurements`` (Web/Job metrics, :mod:`workflows.measure_spec`): only when some are
  configured, each interval first runs one ``analysis.measure`` activity; a measurement
  whose failed/error count exceeds its ``failure_limit`` fails the analysis (rollback)
  at once, unless it is ``dry_run`` (recorded in the step detail and the current
  details only). Without measurements the commands are exactly those of before.

:func:`overall` is the same rule over a list of interval verdicts, for re-judging.
:class:`AnalysisHost` is all an analysis needs of the workflow running it (the
``DeploymentWorkflow`` satisfies it)."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal, Protocol

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from code_foundation.error_types import NON_RETRYABLE
    from code_foundation.names import A
    from workflows.measure_spec import MeasureInput, MeasurementResult, MeasureResult
    from workflows.models import AnalyseInput, AnalysisResult, DeployStatus, StepRecord
    from workflows.spec import AnalysisSpec, DeploymentSpec, PauseSpec

# A metrics backend that is down is retried briefly inside one interval; after that
# the interval is an error and the next interval tries again.
ANALYSIS_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=10),
    maximum_attempts=3,
    non_retryable_error_types=list(NON_RETRYABLE),
)
ANALYSIS_TIMEOUT = timedelta(minutes=2)

Verdict = Literal["pass", "marginal", "fail", "inconclusive", "error"]
"""An interval's verdict: the activity's, or ``error`` when the metrics backend failed."""
Overall = Literal["pass", "fail", "marginal", "inconclusive", "error"]


class AnalysisHost(Protocol):
    """What an analysis step uses of the workflow that runs it."""

    @property
    def progress(self) -> DeployStatus:
        """The live status (the ``status`` query's answer)."""
        ...

    def end_step(self, rec: StepRecord, outcome: str, detail: str = "") -> None:
        """Close a step record with its outcome."""
        ...

    def check_abort(self) -> None:
        """Raise if an abort was requested."""
        ...

    async def sleep(self, duration: timedelta) -> None:
        """A durable sleep that an abort cuts short (and then raises)."""
        ...

    async def wait_approval(self, pause: PauseSpec, label: str) -> str:
        """Wait for an ``approve`` Update (or the pause's timeout); the step outcome."""
        ...


def overall(verdicts: list[str], a: AnalysisSpec) -> Overall:
    """The analysis outcome for interval verdicts (``pass``/``marginal``/``fail``/
    ``inconclusive``/``error``) under the rules above, ignoring human decisions:
    ``pass``, ``fail``, ``marginal`` (would pause), ``inconclusive`` or ``error``."""
    failures = inconclusive = errors = 0
    for v in verdicts:
        if v == "error":
            errors += 1
            if errors > a.consecutive_error_limit and a.on_error != "continue":
                return "error"
            continue
        errors = 0
        if v == "fail":
            failures += 1
            if failures > a.failure_limit:
                return "fail"
        if v == "inconclusive":
            inconclusive += 1
            if inconclusive > a.inconclusive_limit and a.effective_on_inconclusive() != "promote":
                return "inconclusive"
    measured = [v for v in verdicts if v != "error"]
    if not measured:
        return "error"
    last = measured[-1]
    if a.judged and last == "fail":
        return "fail"
    if a.judged and last == "marginal":
        return "marginal" if a.on_marginal != "continue" else "pass"
    return "pass"


def _cause(exc: BaseException) -> tuple[str, str]:
    cur: BaseException = exc
    while isinstance(cur, ActivityError) and cur.__cause__ is not None:
        cur = cur.__cause__
    kind = getattr(cur, "type", None) or type(cur).__name__
    return str(kind), str(cur)


class AnalysisRun:
    """One analysis step of ``wf`` (the ``DeploymentWorkflow``); ``await run()``."""

    def __init__(
        self,
        wf: AnalysisHost,
        a: AnalysisSpec,
        spec: DeploymentSpec,
        stable: str,
        index: int,
        rec: StepRecord,
    ) -> None:
        self.wf, self.a, self.spec, self.stable, self.index, self.rec = (
            wf,
            a,
            spec,
            stable,
            index,
            rec,
        )
        self.verdicts: list[Verdict] = []
        self.scores: list[float] = []
        self.measured: dict[str, list[MeasurementResult]] = {}

    # ------------------------------------------------------------ visibility
    def _details(self, n: int, text: str) -> None:
        st = self.wf.progress
        lines = [f"**analysis** step {self.index + 1}, interval {n + 1}/{self.a.count}: {text}"]
        if st.last_analysis is not None and st.last_analysis.artifact_key:
            lines.append(f"provenance: `{st.last_analysis.artifact_key}`")
        if st.last_analysis_error:
            lines.append(f"last metrics error: {st.last_analysis_error}")
        if self.measured:
            lines.append("measurements: " + self._measurements())
        workflow.set_current_details("\n\n".join(lines))

    def _fail(self, outcome: str, kind: str, message: str) -> ApplicationError:
        self.wf.end_step(self.rec, outcome, message)
        return ApplicationError(message, type=kind, non_retryable=True)

    async def _decide(self, label: str) -> str:
        timeout = self.a.decision_timeout or self.spec.approvals.timeout
        pause = PauseSpec(
            until_approved=True, timeout=timeout, on_timeout=self.a.on_decision_timeout
        )
        return str(await self.wf.wait_approval(pause, label))

    # ------------------------------------------------------------ run
    async def run(self) -> None:
        a, wf, spec = self.a, self.wf, self.spec
        st = wf.progress
        if a.warmup.total_seconds() > 0:
            await wf.sleep(a.warmup)
        origin = workflow.now().timestamp()
        failures = inconclusive = errors = 0
        decisions: list[str] = []
        for n in range(a.count):
            start = workflow.now().timestamp()
            await wf.sleep(a.interval)
            end = workflow.now().timestamp()
            if a.measurements:
                await self._measure(n)
            if a.judged:
                start = (
                    origin if a.lookback is None else max(origin, end - a.lookback.total_seconds())
                )
            try:
                res: AnalysisResult = await workflow.execute_activity(
                    A.ANALYSE,
                    AnalyseInput(
                        service=spec.service,
                        environment=spec.environment,
                        canary_version=spec.version,
                        stable_version=self.stable,
                        window_start=start,
                        window_end=end,
                        spec=spec,
                        step_index=self.index,
                        interval_index=n,
                        run_id=workflow.info().run_id,
                        platform=spec.platform,
                        cluster=spec.cluster,
                        analysis_start=origin if a.judged else None,
                    ),
                    result_type=AnalysisResult,
                    start_to_close_timeout=ANALYSIS_TIMEOUT,
                    retry_policy=ANALYSIS_RETRY,
                )
            except ActivityError as err:
                kind, msg = _cause(err)
                errors += 1
                self.verdicts.append("error")
                st.analysis_errors = errors
                st.last_analysis_error = f"step {self.index + 1} interval {n + 1}: {kind}: {msg}"
                self._details(n, f"error ({errors} in a row, limit {a.consecutive_error_limit})")
                if errors > a.consecutive_error_limit:
                    text = (
                        f"{errors} consecutive metrics-backend errors (limit {a.consecutive_error_limit}); "
                        f"last: {kind}: {msg}"
                    )
                    if a.on_error == "rollback":
                        raise self._fail(
                            "error", "AnalysisError", f"analysis error at step {self.index}: {text}"
                        ) from None
                    if a.on_error == "pause":
                        decisions.append(await self._decide("analysis errors: " + text))
                    errors = 0
                wf.check_abort()
                continue
            errors = 0
            st.analysis_errors = 0
            st.last_analysis = res
            self.verdicts.append(res.verdict)
            if res.score is not None:
                self.scores.append(res.score)
            score = f" (score {res.score:.1f})" if res.score is not None else ""
            self._details(n, f"{res.verdict}{score}")
            if res.verdict == "fail":
                failures += 1
                if failures > a.failure_limit:
                    raise self._fail(
                        "failed",
                        "AnalysisFailed",
                        f"analysis failed at step {self.index}: " + "; ".join(res.reasons),
                    )
            elif res.verdict == "inconclusive":
                inconclusive += 1
                if inconclusive > a.inconclusive_limit:
                    action = a.effective_on_inconclusive()
                    if action == "pause":
                        decisions.append(await self._decide("inconclusive analysis"))
                        inconclusive = 0
                    elif action == "rollback":
                        raise self._fail(
                            "inconclusive",
                            "AnalysisInconclusive",
                            f"analysis inconclusive at step {self.index}: "
                            + "; ".join(res.reasons),
                        )
            wf.check_abort()
        await self._finish(failures, inconclusive, decisions)

    # ------------------------------------------------------------ measurements
    async def _measure(self, n: int) -> None:
        """One ``analysis.measure`` activity; raise when a live measurement is over its limit."""
        a, spec = self.a, self.spec
        timeout = 0.0
        for m in a.measurements:
            source = m.provider.web or m.provider.job
            timeout += source.timeout.total_seconds() if source is not None else 0.0
        try:
            got: MeasureResult = await workflow.execute_activity(
                A.ANALYSIS_MEASURE,
                MeasureInput(
                    measurements=a.measurements,
                    service=spec.service,
                    environment=spec.environment,
                    version=spec.version,
                    step_index=self.index,
                    interval_index=n,
                ),
                result_type=MeasureResult,
                start_to_close_timeout=timedelta(seconds=timeout + 30),
                retry_policy=ANALYSIS_RETRY,
            )
            results = got.results
        except ActivityError as err:
            kind, msg = _cause(err)
            results = [
                MeasurementResult(
                    name=m.name,
                    kind=m.kind,
                    dry_run=m.dry_run,
                    status="error",
                    message=f"{kind}: {msg}"[:500],
                    step_index=self.index,
                    interval_index=n,
                )
                for m in a.measurements
            ]
        for r in results:
            self.measured.setdefault(r.name, []).append(r)
        st = self.wf.progress  # the evidence, field by field, in the status Query
        st.measurements = [*st.measurements, *results][-200:]
        self._details(n, "measured")
        for m in a.measurements:
            bad = [r for r in self.measured.get(m.name, []) if r.status != "passed"]
            if not m.dry_run and len(bad) > m.failure_limit:
                raise self._fail(
                    "failed",
                    "AnalysisFailed",
                    f"analysis failed at step {self.index}: measurement {m.name} "
                    f"{bad[-1].status} {len(bad)} time(s) (failure_limit {m.failure_limit}): "
                    f"{bad[-1].message}; " + self._measurements(),
                )

    def _measurements(self) -> str:
        """``name [dry run] k/n passed (last: status, message)`` per measurement."""
        parts = []
        for name, rs in self.measured.items():
            last = rs[-1]
            ok = sum(r.status == "passed" for r in rs)
            tag = " (dry run)" if last.dry_run else ""
            parts.append(f"{name}{tag} {ok}/{len(rs)} passed (last: {last.status}, {last.message})")
        return "; ".join(parts)

    async def _finish(self, failures: int, inconclusive: int, decisions: list[str]) -> None:
        a = self.a
        measured = [v for v in self.verdicts if v != "error"]
        if not measured:
            text = f"analysis at step {self.index} has no measurement: {self.wf.progress.last_analysis_error}"
            if a.on_error == "rollback":
                raise self._fail("error", "AnalysisError", text)
            if a.on_error == "pause":
                decisions.append(await self._decide("analysis without measurements"))
        elif a.judged and measured[-1] == "fail":
            raise self._fail(
                "failed",
                "AnalysisFailed",
                f"analysis failed at step {self.index}: the last interval did not reach "
                f"marginal_threshold {a.marginal_threshold:g}",
            )
        elif a.judged and measured[-1] == "marginal":
            last = self.scores[-1] if self.scores else float("nan")
            text = (
                f"marginal analysis at step {self.index}: last score {last:.1f} is below "
                f"pass_threshold {a.pass_threshold:g}"
            )
            if a.on_marginal == "rollback":
                raise self._fail("marginal", "AnalysisMarginal", text)
            if a.on_marginal == "pause":
                decisions.append(await self._decide(text))
        scores = f", scores {', '.join(f'{s:.0f}' for s in self.scores)}" if self.scores else ""
        errs = self.verdicts.count("error")
        detail = (
            f"{a.count} interval(s), {failures} failed, {inconclusive} inconclusive"
            + (f", {errs} error(s)" if errs else "")
            + scores
            + ("; " + "; ".join(decisions) if decisions else "")
            + ("; measurements: " + self._measurements() if self.measured else "")
        )
        self.wf.end_step(self.rec, "ok", detail)
        workflow.set_current_details(f"**analysis** step {self.index + 1}: passed — {detail}")
