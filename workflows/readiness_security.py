"""Observability and Security categories of a readiness certificate (pure; the formulas
are stated in :mod:`workflows.readiness_categories`)."""

from __future__ import annotations

from code_foundation.names import W
from workflows.readiness_ledger import wf
from workflows.readiness_models import Category, Evidence, EvidenceBundle, Figure, RunInfo

# the identity-gated workflow types and the action their starter is decided for
STARTER_ACTION = {W.DEPLOYMENT: "deploy", W.ROLLBACK: "rollback", W.CHAOS: "chaos", W.SOAK: "soak"}
IDENTITY_FORMULA = (
    "runs whose starter decision is an audited allow with a verified principal "
    "(identity.<action> record, detail.workflow_id = the run) / the service's top-level "
    "deployment, rollback, chaos and soak runs in the environment and window"
)


def _frac(n: int, d: int) -> float | None:
    return n / d if d else None


def observability(bundle: EvidenceBundle) -> Category:
    obs = bundle.observability
    slos = obs.slos
    formula = "SLOs with every burn-rate alert loaded and budget remaining / SLOs defined"
    if not slos:
        return Category(name="observability", formula=formula)

    def loaded(s: object) -> bool:
        return bool(s.rules_expected) and set(s.rules_expected) <= set(s.rules_loaded)  # type: ignore[attr-defined]

    good = [s for s in slos if loaded(s) and (s.budget_remaining or 0) > 0]
    ev = [Evidence(kind="file", ref=s.source, sha256=s.sha256, note=s.name) for s in slos]
    prom = (
        [Evidence(kind="prometheus", ref=f"{obs.prometheus}/api/v1/rules")]
        if obs.prometheus
        else []
    )
    budgets = [s.budget_remaining for s in slos if s.budget_remaining is not None]
    n_exp = sum(len(s.rules_expected) for s in slos)
    n_loaded = sum(len(set(s.rules_expected) & set(s.rules_loaded)) for s in slos)
    figs = [
        Figure(
            name="slos_defined",
            label="SLOs defined",
            value=float(len(slos)),
            formula="OpenSLO documents for the service",
            evidence=ev,
            detail=", ".join(f"{s.name} ({s.objective:g})" for s in slos),
        ),
        Figure(
            name="burn_rules_loaded",
            label="burn-rate alerts loaded",
            value=_frac(n_loaded, n_exp) if obs.prometheus else None,
            formula="generated alert rules found in Prometheus / generated",
            detail=obs.prometheus_error or f"{n_loaded} of {n_exp}",
            evidence=prom,
        ),
        Figure(
            name="budget_remaining_min",
            label="error budget remaining (lowest)",
            value=min(budgets) if budgets else None,
            formula="slo.error_budget over each SLO's window (1 untouched, 0 spent)",
            detail="; ".join(
                f"{s.name}: {s.budget_remaining} via {s.budget_source}"
                f"{' firing ' + ','.join(s.firing) if s.firing else ''}"
                for s in slos
            ),
            evidence=ev,
        ),
    ]
    return Category(
        name="observability",
        score=len(good) / len(slos),
        formula=formula,
        summary=f"{len(good)} of {len(slos)} SLOs alerting with budget left",
        figures=figs,
    )


def gated_runs(bundle: EvidenceBundle) -> list[RunInfo]:
    """The runs whose starter identity_gate checks (a child runs under its parent's)."""
    env = bundle.environment
    return [
        r
        for r in bundle.runs
        if r.workflow_type in STARTER_ACTION and r.parent_id is None and r.environment in ("", env)
    ]


def identity_coverage(bundle: EvidenceBundle) -> tuple[Figure, Figure]:
    """Identity/policy coverage (see ``IDENTITY_FORMULA``) and the denials audited."""
    s = bundle.security
    decisions = s.identity_decisions
    runs = gated_runs(bundle)
    allowed = {
        (d.workflow_id, d.action): d
        for d in decisions
        if d.allowed and d.actor and d.actor != "unverified"
    }
    verified = [r for r in runs if (r.workflow_id, STARTER_ACTION[r.workflow_type]) in allowed]
    missing = [r for r in runs if r not in verified]
    on = s.identity_enabled is True
    why = (
        "identity not configured (CODE_IDENTITY_ISSUER/AUDIENCE/POLICY)"
        if not on
        else ("no runs in the window" if not runs else "")
    )
    value = len(verified) / len(runs) if on and runs else None
    ev = [
        Evidence(
            kind="ledger",
            ref=f"audit:{allowed[(r.workflow_id, STARTER_ACTION[r.workflow_type])].seq}",
            note=f"{r.workflow_id}: {STARTER_ACTION[r.workflow_type]} allowed for "
            f"{allowed[(r.workflow_id, STARTER_ACTION[r.workflow_type])].actor}",
        )
        for r in verified
    ] + [wf(bundle, r.workflow_id, "no verified identity") for r in missing]
    cover = Figure(
        name="identity_coverage",
        label="identity/policy coverage",
        value=value,
        ok=None if value is None else value == 1.0,
        formula=IDENTITY_FORMULA,
        detail=why
        or f"{len(verified)} of {len(runs)} runs verified"
        + (
            f"; without a verified identity: {', '.join(r.workflow_id for r in missing)}"
            if missing
            else ""
        ),
        evidence=ev if value is not None else [],
    )
    denied = [d for d in decisions if not d.allowed]
    denials = Figure(
        name="identity_denials",
        label="identity decisions denied",
        value=float(len(denied)) if on else None,
        formula="audited identity.<action> records with decision denied (window, service)",
        detail=f"{len(denied)} denied of {len(decisions)} decisions" if on else why,
        evidence=[
            Evidence(kind="ledger", ref=f"audit:{d.seq}", note=f"{d.action} by {d.actor}")
            for d in denied
        ],
    )
    return cover, denials


def security(bundle: EvidenceBundle) -> Category:
    s = bundle.security
    hist = [wf(bundle, w) for w in s.histories_scanned]
    checks: list[bool] = []
    figs: list[Figure] = []

    def add(
        name: str,
        label: str,
        value: float | None,
        passed: bool | None,
        formula: str,
        detail: str = "",
        evidence: list[Evidence] | None = None,
    ) -> None:
        if passed is not None and value is not None:
            checks.append(passed)
        figs.append(
            Figure(
                name=name,
                label=label,
                value=value,
                ok=passed,
                formula=formula,
                detail=detail,
                evidence=evidence or [],
            )
        )

    intact = None if s.audit_records is None else s.audit_broken_at is None
    add(
        "audit_chain_intact",
        "audit chain verified",
        None if intact is None else float(intact),
        intact,
        "1 when rust_core.verify_chain accepts every record and the head",
        f"{s.audit_records} records, head {s.audit_head_hash[:12]}"
        + (f", broken at seq {s.audit_broken_at}" if s.audit_broken_at is not None else ""),
        [
            Evidence(
                kind="ledger",
                ref=f"audit:0..{(s.audit_records or 1) - 1}",
                sha256=s.audit_head_hash or None,
            )
        ],
    )
    scanned = bool(s.histories_scanned) and not s.scan_note
    add(
        "secrets_found",
        "secret values in histories",
        float(len(s.secret_hits)) if scanned else None,
        not s.secret_hits if scanned else None,
        "secret values (plain or base64) found in the service's workflow histories",
        f"{s.secrets_checked} values over {len(s.histories_scanned)} histories"
        + (": " + "; ".join(s.secret_hits) if s.secret_hits else "")
        + (f" ({s.scan_note})" if s.scan_note else ""),
        hist,
    )
    enc = _frac(s.payloads_encrypted, s.payloads)
    add(
        "payload_encryption",
        "payloads encrypted",
        enc,
        None if enc is None else (s.encryption_configured and enc == 1.0),
        "encrypted payloads / payloads in the scanned histories",
        f"{s.payloads_encrypted} of {s.payloads}; codec "
        f"{'configured' if s.encryption_configured else 'not configured'}",
        hist,
    )
    tls = s.temporal_tls
    add(
        "temporal_tls",
        "TLS to Temporal",
        None if tls is None else float(tls),
        tls,
        "1 when the engine's Temporal connection uses TLS",
        "mTLS" if s.temporal_mtls else ("TLS" if tls else "plaintext"),
        [Evidence(kind="setting", ref="CODE_TEMPORAL_TLS")],
    )
    checked = bool(s.policy_checked)
    add(
        "policy_violations",
        "manifest policy violations",
        float(len(s.policy_violations)) if checked else None,
        not s.policy_violations if checked else None,
        "rust_core manifest policy problems of the deployed specs",
        f"{len(s.policy_checked)} specs: " + ("; ".join(s.policy_violations) or "none"),
    )
    cover, denials = identity_coverage(bundle)
    add(cover.name, cover.label, cover.value, cover.ok, cover.formula, cover.detail, cover.evidence)
    figs.append(denials)
    formula = "security checks passed / security checks measured"
    if not checks:
        return Category(name="security", formula=formula, figures=figs)
    return Category(
        name="security",
        score=sum(checks) / len(checks),
        formula=formula,
        summary=f"{sum(checks)} of {len(checks)} checks passed",
        figures=figs,
    )
