"""Abort conditions and deviation decisions of a chaos experiment, as pure functions
over probe records (``ChaosExperimentWorkflow`` only orchestrates).

* A steady state *holds* when every probe record of a round is within tolerance
  (:func:`holds`); a record out of tolerance is a *deviation* (:func:`deviation`).
* During the fault window each probe round is judged by :func:`judge_round`:
  a deviation aborts when ``controls.abort_on_probe_failure``; otherwise the
  round's requests join the :class:`BurnSeries`, and when
  ``controls.abort_burn_rate`` is set the SRE-Workbook multi-window burn (long
  window = the last ``burn_window`` probe rounds, short window = the last round,
  :func:`chaos.tolerance.window_burn`) aborts when both windows exceed it.
* :func:`settle` is how a journal ends once the rollbacks ran: a cancellation seen
  late still interrupts the run, a run nothing ended is ``completed``.

Pure: no I/O, no clock (the caller passes ``now``); safe in the workflow sandbox."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from chaos.messages import Journal, ProbeRecord
from chaos.model import Controls
from chaos.tolerance import window_burn

CANCELLED = "the workflow was cancelled"
ROLLBACK_FAILED = "a rollback FAILED after retries"


def holds(records: Sequence[ProbeRecord]) -> bool:
    """The steady state holds: every record is within tolerance."""
    return all(r.ok for r in records)


def deviation(records: Sequence[ProbeRecord]) -> str | None:
    """What deviated (``name: detail; ...``), or ``None`` when every record is ok."""
    bad = [r for r in records if not r.ok]
    return "; ".join(f"{r.name}: {r.detail}" for r in bad) if bad else None


@dataclass
class BurnSeries:
    """Good and total requests of every probe record of the fault window, stamped with
    the time of their round."""

    stamps: list[float] = field(default_factory=list)
    good: list[float] = field(default_factory=list)
    total: list[float] = field(default_factory=list)

    def add(self, now: float, records: Sequence[ProbeRecord]) -> None:
        for r in records:
            self.stamps.append(now)
            self.good.append(float(r.requests - r.failures))
            self.total.append(float(r.requests))


@dataclass(frozen=True)
class RoundVerdict:
    """One probe round of the fault window: what deviated, and why it aborts (if so)."""

    deviation: str | None = None
    abort: str | None = None


def judge_round(
    records: Sequence[ProbeRecord], series: BurnSeries, controls: Controls, now: float
) -> RoundVerdict:
    """Judge one round (adding its requests to ``series`` unless it already aborts)."""
    if not records:
        return RoundVerdict()
    deviated = deviation(records)
    if deviated is not None and controls.abort_on_probe_failure:
        first = next(r for r in records if not r.ok)
        return RoundVerdict(
            deviated,
            f"abort condition: probe {first.name} out of tolerance ({first.detail})",
        )
    series.add(now, records)
    if controls.abort_burn_rate is None:
        return RoundVerdict(deviated)
    step = controls.probe_interval.total_seconds()
    long_b, short_b, firing, engine = window_burn(
        series.stamps,
        series.good,
        series.total,
        controls.slo_objective,
        controls.abort_burn_rate,
        controls.burn_window * step,
        step,
        now,
    )
    if not firing:
        return RoundVerdict(deviated)
    return RoundVerdict(
        deviated,
        f"abort condition: error-rate burn {long_b:.2f} over the last "
        f"{controls.burn_window} probe rounds and {short_b:.2f} over the last round "
        f"exceed {controls.abort_burn_rate:g} ({engine})",
    )


def rollback_failed(j: Journal) -> None:
    """A rollback still failed after its retries: the run fails, whatever it was."""
    j.rollback_failed = True
    j.status = "failed"
    j.reason = (j.reason + "; " if j.reason else "") + ROLLBACK_FAILED


def settle(j: Journal, cancelled: bool, late_cancel: bool) -> bool:
    """The journal's final status once the rollbacks ran; True when the run must end
    cancelled (a cancellation arrived before or during the rollbacks)."""
    if late_cancel and not cancelled:
        cancelled = True
        if j.status == "running":
            j.status, j.reason = "interrupted", CANCELLED
    if j.status == "running":
        j.status = "completed"
    return cancelled
