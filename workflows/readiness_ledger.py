"""Deployments and rollbacks reconstructed from the ledger's audit records (pure), and
the Delivery (DORA) and Recovery categories computed from them. The rules are stated in
:mod:`workflows.readiness_formulas`."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import datetime

from code_foundation.names import W
from workflows.readiness_models import (
    NOT_MEASURED,
    Category,
    Evidence,
    EvidenceBundle,
    Figure,
    LedgerEvent,
    Rules,
)

FINAL = ("promoted", "rolled_back", "failed", "aborted")
FAILURES = ("rolled_back", "failed")


@dataclass
class Deployment:
    workflow_id: str
    version: str
    started: LedgerEvent
    serving: LedgerEvent | None = None  # in_progress
    end: LedgerEvent | None = None  # promoted / failed / aborted / (rollback's) rolled_back
    restored: LedgerEvent | None = None  # the rollback's promoted record of the restored version
    events: list[LedgerEvent] = field(default_factory=list)

    @property
    def outcome(self) -> str:
        return self.end.status if self.end else "running"


def wf(bundle: EvidenceBundle, workflow_id: str, note: str = "") -> Evidence:
    url = f"{bundle.ui_base}{workflow_id}" if bundle.ui_base else None
    return Evidence(kind="workflow", ref=workflow_id, url=url, note=note)


def row(e: LedgerEvent) -> Evidence:
    return Evidence(kind="ledger", ref=f"audit:{e.seq}", note=f"release.{e.status} {e.version}")


def deployments(events: list[LedgerEvent]) -> list[Deployment]:
    """The deployments of the window, oldest first (see the module docstring)."""
    evs = sorted(events, key=lambda e: e.seq)
    deps: dict[str, Deployment] = {}
    for e in evs:
        if e.status == "intent" and e.strategy != "rollback" and e.workflow_id not in deps:
            deps[e.workflow_id] = Deployment(e.workflow_id, e.version, e, events=[e])
    for e in evs:
        d = deps.get(e.workflow_id)
        if d is not None and e is not d.started:
            d.events.append(e)
            if e.status == "in_progress" and d.serving is None:
                d.serving = e
            elif e.status in ("promoted", "failed", "aborted") and d.end is None:
                d.end = e
    for d in deps.values():
        if d.end is not None:
            continue
        rb = next(
            (
                e
                for e in evs
                if e.status == "rolled_back"
                and e.version == d.version
                and e.strategy == "rollback"
                and e.seq > d.started.seq
            ),
            None,
        )
        if rb is not None:
            d.end = rb
            d.events.append(rb)
            d.restored = next(
                (
                    e
                    for e in evs
                    if e.workflow_id == rb.workflow_id and e.status == "promoted" and e.seq > rb.seq
                ),
                None,
            )
            if d.restored is not None:
                d.events.append(d.restored)
    return sorted(deps.values(), key=lambda d: d.started.seq)


def _secs(a: datetime, b: datetime) -> float:
    return (b - a).total_seconds()


def _median(xs: list[float]) -> float | None:
    return statistics.median(xs) if xs else None


def delivery(bundle: EvidenceBundle) -> Category:
    deps = deployments(bundle.ledger)
    done = [d for d in deps if d.outcome in FINAL]
    days = max(_secs(bundle.window_start, bundle.window_end) / 86400.0, 1e-9)
    ev = [e for d in done for e in (wf(bundle, d.workflow_id, d.outcome), row(d.end))]  # type: ignore[arg-type]
    promoted = [d for d in done if d.outcome == "promoted"]
    failed = [d for d in done if d.outcome in FAILURES]
    lead = [_secs(d.started.ts, d.end.ts) for d in promoted if d.end]
    restore = [
        _secs((d.serving or d.started).ts, d.restored.ts) for d in failed if d.restored is not None
    ]
    n = len(done)
    cfr = len(failed) / n if n else None
    figs = [
        Figure(
            name="deployments",
            label="deployments finished",
            value=float(n) if n else None,
            formula="deployments with a final ledger status (promoted, rolled_back, failed, aborted)",
            detail=", ".join(f"{d.version}: {d.outcome}" for d in done),
            evidence=ev,
        ),
        Figure(
            name="deploy_frequency",
            label="deployment frequency",
            value=n / days if n else None,
            unit="/day",
            formula="deployments finished / window days",
            evidence=ev,
        ),
        Figure(
            name="lead_time_median",
            label="lead time (median)",
            value=_median(lead),
            unit="s",
            formula="median(promoted record − intent record) over promoted deployments",
            evidence=[row(e) for d in promoted for e in (d.started, d.end) if e is not None],
        ),
        Figure(
            name="change_failure_rate",
            label="change failure rate",
            value=cfr,
            formula="(rolled back + failed) / deployments finished",
            detail=f"{len(failed)} of {n}",
            evidence=[
                e
                for d in failed
                if d.end is not None
                for e in (wf(bundle, d.workflow_id, d.outcome), row(d.end))
            ],
        ),
        Figure(
            name="time_to_restore_median",
            label="time to restore (median)",
            value=_median(restore),
            unit="s",
            formula="median(restored version's promoted record − failed version's in_progress)",
            evidence=[
                row(e)
                for d in failed
                for e in (d.serving or d.started, d.restored)
                if e is not None
            ],
        ),
    ]
    if not n:
        return Category(name="delivery", formula="1 − change failure rate", figures=figs)
    return Category(
        name="delivery",
        score=1.0 - (cfr or 0.0),
        formula="1 − change failure rate",
        summary=f"{n} deployments, {len(failed)} rolled back or failed",
        figures=figs,
    )


def recovery(bundle: EvidenceBundle, rules: Rules) -> Category:
    """Time to roll back: rollback workflow start (detection) → its ledger promoted record."""
    promoted = {
        e.workflow_id: e
        for e in sorted(bundle.ledger, key=lambda e: e.seq)
        if e.status == "promoted" and e.strategy == "rollback"
    }
    rto = rules.rto.total_seconds()
    measured: list[tuple[str, float, LedgerEvent]] = []
    for run in bundle.runs:
        if run.workflow_type != W.ROLLBACK or run.workflow_id not in promoted:
            continue
        e = promoted[run.workflow_id]
        measured.append((run.workflow_id, _secs(run.start_time, e.ts), e))
    times = [t for _, t, _ in measured]
    ev = [x for wid, t, e in measured for x in (wf(bundle, wid, f"{t:.1f}s"), row(e))]
    within = sum(1 for t in times if t <= rto)
    figs = [
        Figure(
            name="rollbacks",
            label="rollbacks measured",
            value=float(len(times)) if times else None,
            formula="rollback workflows of the window whose restored version reached the ledger",
            evidence=ev,
        ),
        Figure(
            name="rollback_time_median",
            label="time to roll back (median)",
            value=_median(times),
            unit="s",
            formula="median(ledger promoted record − rollback workflow start)",
            evidence=ev,
        ),
        Figure(
            name="rollback_time_max",
            label="time to roll back (max)",
            value=max(times) if times else None,
            unit="s",
            formula="max(ledger promoted record − rollback workflow start)",
            ok=(max(times) <= rto) if times else None,
            detail=f"RTO target {rto:g}s",
            evidence=ev,
        ),
    ]
    if not times:
        return Category(
            name="recovery", formula=f"rollbacks within {rto:g}s / rollbacks", figures=figs
        )
    return Category(
        name="recovery",
        score=within / len(times),
        formula=f"rollbacks within {rto:g}s / rollbacks",
        summary=f"{within} of {len(times)} rollbacks within {rto:g}s",
        figures=figs,
    )


__all__ = ["NOT_MEASURED", "Deployment", "delivery", "deployments", "recovery", "row", "wf"]
