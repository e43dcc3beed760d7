"""The formulas of a readiness certificate (pure, deterministic: no I/O, no clock).

:func:`certify` turns an :class:`~workflows.readiness_models.EvidenceBundle` and the
declared :class:`~workflows.readiness_models.Rules` into a
:class:`~workflows.readiness_models.Certificate`. Each category's score is one stated
fraction (never an average of other scores); a category without evidence has
``score=None`` ("not measured"). Deployments are read from the ledger's audit chain:

* a *deployment* is a workflow with a ``release.intent`` record (strategy not
  ``rollback``); its outcome is its own ``promoted``/``failed``/``aborted`` record, or
  ``rolled_back`` when a rollback workflow recorded ``release.rolled_back`` for its version
  after it started; a deployment with none of these is still running and not counted.
* lead time = promoted − intent; time to restore = the rollback's ``promoted`` record of
  the restored version − the failed deployment's ``in_progress`` (else ``intent``) record.
* Recovery: time to roll back = the rollback workflow's start (detection) → its ledger
  ``promoted`` record (traffic 100 % on the restored version, others retired).

:func:`verdict` applies the rules; :func:`diff` compares with a previous certificate. The
figures per category are built in :mod:`workflows.readiness_categories`."""

from __future__ import annotations

from datetime import datetime

from workflows.readiness_categories import (
    delivery,
    observability,
    performance,
    recovery,
    reliability,
    security,
    soak,
)
from workflows.readiness_models import (
    CATEGORIES,
    NOT_MEASURED,
    Category,
    Certificate,
    EvidenceBundle,
    RuleOutcome,
    Rules,
    SuiteRun,
)


def categories(bundle: EvidenceBundle, rules: Rules) -> list[Category]:
    return [
        delivery(bundle),
        reliability(bundle),
        performance(bundle, rules),
        soak(bundle),
        observability(bundle),
        security(bundle),
        recovery(bundle, rules),
    ]


def verdict(
    cats: list[Category], rules: Rules, suite: list[SuiteRun]
) -> tuple[list[RuleOutcome], list[str]]:
    """Every declared rule's outcome, and the reasons of those that failed."""
    by_name = {c.name: c for c in cats}
    out: list[RuleOutcome] = []
    for run in suite:
        if run.kind in ("soak", "load"):
            ok = run.outcome == "pass"
            why = f"suite {run.kind} {run.workflow_id} ended {run.outcome}"
            out.append(
                RuleOutcome(
                    rule=f"suite {run.kind} {run.name} passes",
                    passed=ok,
                    reason="" if ok else f"{why}: {run.reason}".rstrip(": "),
                )
            )
    for name, minimum in rules.required.items():
        cat = by_name[name]
        rule = f"{name} >= {minimum:g}"
        if cat.score is None:
            out.append(RuleOutcome(rule=rule, passed=False, reason=f"{name}: {NOT_MEASURED}"))
        else:
            ok = cat.score >= minimum - 1e-12
            reason = "" if ok else f"{name}: {cat.score:.2f} < {minimum:g} ({cat.summary})"
            out.append(RuleOutcome(rule=rule, passed=ok, reason=reason))
    for fr in rules.figures:
        cat_name, _, fig_name = fr.figure.partition(".")
        cat = by_name.get(cat_name)  # type: ignore[call-overload]
        fig = next((f for f in cat.figures if f.name == fig_name), None) if cat else None
        bounds = " and ".join(
            b
            for b in (
                f"<= {fr.max:g}" if fr.max is not None else "",
                f">= {fr.min:g}" if fr.min is not None else "",
            )
            if b
        )
        rule = f"{fr.figure} {bounds}".strip()
        if fig is None or fig.value is None:
            ok = not fr.required
            reason = "" if ok else f"{fr.figure}: {NOT_MEASURED}"
        else:
            v = fig.value
            ok = (fr.max is None or v <= fr.max) and (fr.min is None or v >= fr.min)
            reason = "" if ok else f"{fr.figure} = {v:g} (rule {bounds}): {fig.detail}".rstrip(": ")
        out.append(RuleOutcome(rule=rule, passed=ok, reason=reason))
    return out, [r.reason for r in out if not r.passed]


def certify(
    bundle: EvidenceBundle,
    rules: Rules,
    *,
    generated_at: datetime,
    workflow_id: str = "",
    suite: list[SuiteRun] | None = None,
    previous: Certificate | None = None,
) -> Certificate:
    cats = categories(bundle, rules)
    suite = suite or []
    outcomes, reasons = verdict(cats, rules, suite)
    cert = Certificate(
        service=bundle.service,
        environment=bundle.environment,
        window_start=bundle.window_start,
        window_end=bundle.window_end,
        generated_at=generated_at,
        workflow_id=workflow_id,
        url=f"{bundle.ui_base}{workflow_id}" if bundle.ui_base and workflow_id else None,
        categories=cats,
        verdict="fail" if reasons else "pass",
        reasons=reasons,
        rules=outcomes,
        suite=suite,
    )
    if previous is not None:
        cert.previous_workflow_id = previous.workflow_id or None
        cert.diff = diff(previous, cert)
    return cert


def _score(c: Category) -> str:
    return NOT_MEASURED if c.score is None else f"{c.score:.2f}"


def _fig(v: float | None) -> str:
    return NOT_MEASURED if v is None else f"{v:.4g}"


def diff(old: Certificate, new: Certificate) -> list[str]:
    """One line per category whose score changed, with the figures that moved (and, for
    reliability, the chaos runs that deviated since)."""
    lines: list[str] = []
    if old.verdict != new.verdict:
        lines.append(f"Verdict: {old.verdict} → {new.verdict}")
    for name in CATEGORIES:
        a, b = old.category(name), new.category(name)
        if a.score == b.score or (
            a.score is not None and b.score is not None and abs(a.score - b.score) < 5e-3
        ):
            continue
        olds = {f.name: f for f in a.figures}
        why = [
            f"{f.label} {_fig(olds[f.name].value)} → {_fig(f.value)}"
            for f in b.figures
            if f.name in olds and olds[f.name].value != f.value
        ]
        if name == "reliability":
            seen = {e.ref for f in a.figures for e in f.evidence}
            for f in b.figures:
                if f.name == "deviated":
                    why += [
                        f"chaos `{e.note}` deviated ({e.ref})"
                        for e in f.evidence
                        if e.ref not in seen
                    ]
        because = f" because {'; '.join(why)}" if why else ""
        lines.append(f"{name.capitalize()}: {_score(a)} → {_score(b)}{because}")
    return lines
