"""The category formulas of a readiness certificate other than the ledger's (those are in
:mod:`workflows.readiness_ledger`). Pure. Each score is one fraction:

* Reliability = (chaos experiments completed without deviation + SLOs whose availability
  over the window, from Prometheus, meets the objective) / (chaos experiments run + SLOs
  whose availability was measured).
* Performance = declared latency targets met / declared targets, on the latest load test
  (else soak) of the window; a target ``"p95 < 200ms at 100 rps"`` is met when the quantile
  is under the bound and the achieved rate is at least 98 % of the rate.
* Soak = soaks with verdict ``pass`` / soaks.
* Observability = SLOs whose burn-rate alerts are all loaded in Prometheus and whose
  error budget remains (> 0) / SLOs defined for the service.
* Security = checks passed / checks measured, among: audit chain intact, no secret value in
  the service's workflow histories, payload encryption on (every scanned payload
  encrypted), TLS to Temporal, no manifest policy violation, identity/policy coverage 1
  (every top-level deployment, rollback, chaos and soak run of the window has an audited
  allow of its starter with a verified principal; not measured when identity is off).
"""

from __future__ import annotations

from workflows.readiness_ledger import delivery, recovery, wf
from workflows.readiness_models import (
    Category,
    ChaosRun,
    Evidence,
    EvidenceBundle,
    Figure,
    LatencyTarget,
    Rules,
    SoakRun,
)
from workflows.readiness_security import observability, security

RATE_TOLERANCE = 0.98

__all__ = [
    "delivery",
    "observability",
    "performance",
    "recovery",
    "reliability",
    "security",
    "soak",
]


def _frac(n: int, d: int) -> float | None:
    return n / d if d else None


def reliability(bundle: EvidenceBundle) -> Category:
    runs = sorted(bundle.chaos, key=lambda r: r.started_at)
    passed = [r for r in runs if r.status == "completed" and not r.deviated]
    deviated = [r for r in runs if r.deviated or r.status != "completed"]
    faulted = [r for r in runs if r.faults > 0]
    rolled = [r for r in faulted if r.rollbacks > 0 and not r.rollback_failed]

    def ev(rs: list[ChaosRun]) -> list[Evidence]:
        out: list[Evidence] = []
        for r in rs:
            out += [wf(bundle, r.workflow_id, r.title), r.journal]
        return out

    figs = [
        Figure(
            name="chaos_runs",
            label="chaos experiments",
            value=float(len(runs)) if runs else None,
            formula="chaos journals of the window targeting the service",
            evidence=ev(runs),
        ),
        Figure(
            name="passed_without_deviation",
            label="passed without deviation",
            value=float(len(passed)) if runs else None,
            formula="journals with status completed and deviated false",
            evidence=ev(passed),
        ),
        Figure(
            name="deviated",
            label="deviated or failed",
            value=float(len(deviated)) if runs else None,
            formula="journals deviated, failed, aborted or interrupted",
            detail="; ".join(
                f"{r.title} {r.status}{' (deviated)' if r.deviated else ''} "
                f"on {r.started_at:%Y-%m-%d %H:%M}: {r.reason}"
                for r in deviated
            ),
            evidence=[
                Evidence(
                    kind="workflow",
                    ref=r.workflow_id,
                    url=wf(bundle, r.workflow_id).url,
                    note=r.title,
                )
                for r in deviated
            ],
        ),
        Figure(
            name="rollbacks_after_faults",
            label="rollbacks after faults",
            value=_frac(len(rolled), len(faulted)),
            formula="runs with faults whose rollbacks all ran / runs with faults",
            detail=f"{len(rolled)} of {len(faulted)}",
            evidence=ev(faulted),
        ),
    ]
    cm = bundle.crash_matrix
    figs.append(
        Figure(
            name="crash_matrix",
            label="crash matrix (this build)",
            value=_frac(cm.correct, cm.total) if cm else None,
            formula="trials correct / trials (artifacts/crash-matrix.md)",
            detail=f"{cm.correct}/{cm.total} trials correct" if cm else "",
            evidence=[cm.evidence] if cm else [],
        )
    )
    avail, met, measured = availability(bundle)
    figs.append(avail)
    formula = (
        "(chaos experiments passed without deviation + SLOs whose measured availability "
        "meets the objective) / (chaos experiments + SLOs measured)"
    )
    if not runs and not measured:
        return Category(name="reliability", formula=formula, figures=figs)
    parts = [f"{len(passed)} of {len(runs)} chaos experiments passed without deviation"]
    if measured:
        parts.append(f"{met} of {measured} SLOs met their availability objective")
    return Category(
        name="reliability",
        score=(len(passed) + met) / (len(runs) + measured),
        formula=formula,
        summary="; ".join(parts),
        figures=figs,
    )


def availability(bundle: EvidenceBundle) -> tuple[Figure, int, int]:
    """The lowest measured availability against its SLO's objective, and how many SLOs
    met their objective of how many were measured."""
    slos = bundle.observability.slos
    got = [s for s in slos if s.availability is not None]
    met = [s for s in got if (s.availability or 0.0) >= s.objective]
    low = min(got, key=lambda s: s.availability or 0.0) if got else None
    prom = bundle.observability.prometheus
    ev = [
        Evidence(kind="prometheus", ref=s.availability_query, note=f"{s.name} ({prom})")
        for s in got
    ] + [Evidence(kind="file", ref=s.source, sha256=s.sha256 or None, note=s.name) for s in got]
    if not slos:
        why = "no SLO defined for the service"
    elif not got:
        why = "; ".join(f"{s.name}: {s.availability_error or 'not read'}" for s in slos)
    else:
        why = "; ".join(
            f"{s.name}: {s.availability:.5f} vs objective {s.objective:g} "
            f"({'pass' if s in met else 'fail'}, {s.availability_events or 0:g} events)"
            if s.availability is not None
            else f"{s.name}: {s.availability_error}"
            for s in slos
        )
    fig = Figure(
        name="availability",
        label="availability against the SLO (lowest)",
        value=low.availability if low else None,
        ok=None if not got else len(met) == len(got),
        formula="good events / total events over the window (Prometheus: "
        "sum(increase(good[W])) / sum(increase(total[W])) at the window's end), "
        "pass when >= the SLO's objective",
        detail=why,
        evidence=ev,
    )
    return fig, len(met), len(got)


def _q(run: SoakRun, q: str) -> float | None:
    return {"p50": run.p50_ms, "p95": run.p95_ms, "p99": run.p99_ms}.get(q)


def performance(bundle: EvidenceBundle, rules: Rules) -> Category:
    measured = [r for r in bundle.soaks if r.p50_ms is not None]
    runs = sorted(measured, key=lambda r: (r.kind == "load", r.started_at))
    latest = runs[-1] if runs else None
    formula = "declared targets met / declared targets (latest load test, else soak)"
    if latest is None:
        return Category(name="performance", formula=formula)
    ev = [wf(bundle, latest.workflow_id, latest.kind), *latest.artifacts]
    figs = [
        Figure(
            name=f"{q}_ms",
            label=q,
            value=_q(latest, q),
            unit="ms",
            formula=f"{q} latency of {latest.kind} {latest.workflow_id}",
            evidence=ev,
        )
        for q in ("p50", "p95", "p99")
    ]
    figs.append(
        Figure(
            name="achieved_rate",
            label="achieved rate",
            value=latest.achieved_rate,
            unit="rps",
            formula="requests sent / seconds of load",
            detail=f"planned {latest.rate:g} rps",
            evidence=ev,
        )
    )
    met = judged = 0
    targets: list[LatencyTarget] = rules.latency_targets()
    for i, t in enumerate(targets):
        v = _q(latest, t.quantile) if t.quantile != "p90" else None
        rate_ok = t.at_rps is None or latest.achieved_rate >= RATE_TOLERANCE * t.at_rps
        ok = None if v is None else (v < t.below_ms and rate_ok)
        met += int(bool(ok))
        judged += int(ok is not None)
        figs.append(
            Figure(
                name=f"target_{i + 1}",
                label=f"target: {t.text}",
                value=None if ok is None else float(ok),
                ok=ok,
                formula="1 when the quantile is under the bound at ≥ 98 % of the rate",
                detail=(
                    f"{t.quantile} = {v:.2f} ms, achieved {latest.achieved_rate:.1f} rps"
                    if v is not None
                    else f"{t.quantile} not recorded"
                ),
                evidence=ev,
            )
        )
    if not judged:
        why = "no targets declared" if not targets else "no target could be evaluated"
        return Category(
            name="performance", formula=formula, figures=figs, summary=f"{why}: not measured"
        )
    return Category(
        name="performance",
        score=met / judged,
        formula=formula,
        summary=f"{met} of {judged} targets met by {latest.kind} {latest.workflow_id}",
        figures=figs,
    )


def soak(bundle: EvidenceBundle) -> Category:
    runs = sorted((r for r in bundle.soaks if r.kind == "soak"), key=lambda r: r.started_at)
    formula = "soaks with verdict pass / soaks"
    if not runs:
        return Category(name="soak", formula=formula)
    passed = [r for r in runs if r.verdict == "pass"]

    def ev(rs: list[SoakRun]) -> list[Evidence]:
        return [x for r in rs for x in (wf(bundle, r.workflow_id, r.verdict), *r.artifacts)]

    def worst(vals: list[float | None]) -> float | None:
        xs = [v for v in vals if v is not None]
        return max(xs) if xs else None

    figs = [
        Figure(
            name="soaks",
            label="soaks",
            value=float(len(runs)),
            formula="soak runs",
            evidence=ev(runs),
        ),
        Figure(
            name="passed",
            label="soaks passed",
            value=float(len(passed)),
            formula="verdict pass",
            detail="; ".join(f"{r.workflow_id}: {r.verdict} {r.reason}".strip() for r in runs),
            evidence=ev(passed),
        ),
        Figure(
            name="p99_drift_max",
            label="p99 drift (worst)",
            value=worst([r.p99_drift for r in runs]),
            formula="max last 'p99 drift' check (p99 / baseline p99 − 1)",
            evidence=ev(runs),
        ),
        Figure(
            name="error_creep_max",
            label="error creep (worst)",
            value=worst([r.error_creep for r in runs]),
            formula="max last 'error creep' check (error rate − baseline)",
            evidence=ev(runs),
        ),
        Figure(
            name="rss_slope_max",
            label="RSS trend (worst)",
            unit="MB/h",
            value=worst([r.rss_slope_mb_h for r in runs]),
            formula="max Sen slope of RSS (Mann-Kendall)",
            evidence=ev(runs),
        ),
    ]
    return Category(
        name="soak",
        score=len(passed) / len(runs),
        formula=formula,
        summary=f"{len(passed)} of {len(runs)} soaks passed",
        figures=figs,
    )
