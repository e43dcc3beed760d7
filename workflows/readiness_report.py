"""Render a readiness certificate (pure: strings in, strings out; no I/O).

* :func:`render_json` — the schema-versioned ``certificate.json``.
* :func:`render_markdown` — ``certificate.md``: verdict, reasons, one table per category
  (figure, value, formula, evidence), the diff against the previous certificate.
* :func:`render_html` — a self-contained ``certificate.html`` (no external resource) with
  inline SVG plots: deploy outcomes over time, rollback times, soak p99 trend, error budget.
  Elements carry ``data-category`` / ``data-figure`` / ``id="verdict"`` for DOM checks.
"""

from __future__ import annotations

import html

from workflows.readiness_ledger import deployments
from workflows.readiness_models import NOT_MEASURED, Certificate, Evidence, EvidenceBundle, Figure

COLORS = {
    "promoted": "#2e7d32",
    "rolled_back": "#c62828",
    "failed": "#c62828",
    "aborted": "#f9a825",
    "running": "#757575",
}


def render_json(cert: Certificate) -> str:
    return cert.model_dump_json(indent=2)


def _value(f: Figure) -> str:
    if f.value is None:
        return NOT_MEASURED
    return f"{f.value:.4g}{(' ' + f.unit) if f.unit else ''}"


def _ev_text(e: Evidence) -> str:
    text = e.ref
    if e.sha256:
        text += f" (sha256 {e.sha256[:12]})"
    return f"[{text}]({e.url})" if e.url else text


def render_markdown(cert: Certificate) -> str:
    out = [
        f"# Readiness certificate: {cert.service} / {cert.environment}",
        "",
        f"**Verdict: {cert.verdict.upper()}** — window {cert.window_start:%Y-%m-%d %H:%M} → "
        f"{cert.window_end:%Y-%m-%d %H:%M} UTC, generated {cert.generated_at:%Y-%m-%d %H:%M} "
        f"by {cert.workflow_id or 'a direct call'} (`{cert.schema_version}`)",
        "",
    ]
    out += [f"- ✗ {r}" for r in cert.reasons] or ["All declared rules hold."]
    out += ["", "| category | score | formula | summary |", "|---|---|---|---|"]
    for c in cert.categories:
        score = NOT_MEASURED if c.score is None else f"{c.score:.2f}"
        out.append(f"| {c.name} | {score} | {c.formula} | {c.summary} |")
    for c in cert.categories:
        out += [
            "",
            f"## {c.name.capitalize()}",
            "",
            "| figure | value | formula | evidence |",
            "|---|---|---|---|",
        ]
        for f in c.figures:
            ev = ", ".join(_ev_text(e) for e in f.evidence[:8])
            more = f" (+{len(f.evidence) - 8})" if len(f.evidence) > 8 else ""
            out.append(f"| {f.label} | {_value(f)} | {f.formula} | {ev}{more} |")
    if cert.rules:
        out += ["", "## Rules", ""]
        out += [f"- {'✓' if r.passed else '✗'} {r.rule} {r.reason}".rstrip() for r in cert.rules]
    if cert.suite:
        out += ["", "## Suite", ""]
        out += [
            f"- {s.kind} {s.name}: {s.outcome} ({s.workflow_id}) {s.reason}".rstrip()
            for s in cert.suite
        ]
    if cert.previous_workflow_id:
        out += ["", f"## Since {cert.previous_workflow_id}", ""]
        out += [f"- {line}" for line in cert.diff] or ["- no change"]
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------- SVG
W, H, PAD = 460, 160, 30


def _svg(title: str, body: str, plot_id: str) -> str:
    return (
        f'<figure><svg id="{plot_id}" xmlns="http://www.w3.org/2000/svg" width="{W}" '
        f'height="{H}" viewBox="0 0 {W} {H}" role="img"><title>{html.escape(title)}</title>'
        f'<rect width="{W}" height="{H}" fill="#fafafa" stroke="#ddd"/>{body}</svg>'
        f"<figcaption>{html.escape(title)}</figcaption></figure>"
    )


def _empty(title: str, plot_id: str) -> str:
    return _svg(
        title,
        f'<text x="{W / 2}" y="{H / 2}" text-anchor="middle" fill="#777">{NOT_MEASURED}</text>',
        plot_id,
    )


def bars(
    title: str,
    labels: list[str],
    values: list[float],
    unit: str,
    plot_id: str,
    colors: list[str] | None = None,
) -> str:
    if not values:
        return _empty(title, plot_id)
    top = max(max(values), 1e-9)
    bw = (W - 2 * PAD) / len(values)
    parts = []
    for i, (lab, v) in enumerate(zip(labels, values, strict=True)):
        h = max(0.0, v) / top * (H - 2 * PAD)
        x, y = PAD + i * bw + 2, H - PAD - h
        c = colors[i] if colors else "#1565c0"
        parts.append(
            f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{bw - 4:.1f}" '
            f'height="{h:.1f}" fill="{c}"><title>{html.escape(lab)}: {v:.3g} {unit}'
            "</title></rect>"
        )
    parts.append(f'<text x="4" y="14" font-size="11">max {top:.3g} {unit}</text>')
    return _svg(title, "".join(parts), plot_id)


def line(title: str, values: list[float], unit: str, plot_id: str) -> str:
    if len(values) < 1:
        return _empty(title, plot_id)
    top = max(max(values), 1e-9)
    n = max(len(values) - 1, 1)
    pts = " ".join(
        f"{PAD + i / n * (W - 2 * PAD):.1f},{H - PAD - v / top * (H - 2 * PAD):.1f}"
        for i, v in enumerate(values)
    )
    body = (
        f'<polyline class="series" points="{pts}" fill="none" stroke="#6a1b9a" '
        f'stroke-width="2"/><text x="4" y="14" font-size="11">max {top:.3g} {unit}</text>'
    )
    return _svg(title, body, plot_id)


def plots(cert: Certificate, bundle: EvidenceBundle) -> list[str]:
    deps = deployments(bundle.ledger)
    out = [
        bars(
            "Deploy outcomes over time (one bar per deployment)",
            [f"{d.version} {d.started.ts:%m-%d %H:%M} {d.outcome}" for d in deps],
            [1.0] * len(deps),
            "",
            "plot-deploys",
            [COLORS.get(d.outcome, "#757575") for d in deps],
        )
    ]
    fig = cert.figure("recovery.rollbacks")
    times = [
        float(e.note.rstrip("s")) for e in (fig.evidence if fig else []) if e.kind == "workflow"
    ]
    out.append(
        bars(
            "Rollback times (detection → stable 100 %)",
            [e.ref for e in (fig.evidence if fig else []) if e.kind == "workflow"],
            times,
            "s",
            "plot-rollbacks",
        )
    )
    soaks = sorted((s for s in bundle.soaks if s.kind == "soak"), key=lambda s: s.started_at)
    series = [p for s in soaks for p in s.slice_p99]
    out.append(
        line(
            "Soak p99 per slice (soaks of the window, oldest first)", series, "ms", "plot-soak-p99"
        )
    )
    slos = bundle.observability.slos
    vals = [s.budget_remaining for s in slos if s.budget_remaining is not None]
    out.append(
        bars(
            "Error budget remaining per SLO",
            [s.name for s in slos if s.budget_remaining is not None],
            vals,
            "",
            "plot-budget",
        )
    )
    return out


def _ev_html(e: Evidence) -> str:
    text = html.escape(e.ref + (f" sha256:{e.sha256[:12]}" if e.sha256 else ""))
    if e.url:
        return f'<a class="evidence" href="{html.escape(e.url)}">{text}</a>'
    return f'<span class="evidence">{text}</span>'


def render_html(cert: Certificate, bundle: EvidenceBundle) -> str:
    esc = html.escape
    rows = []
    for c in cert.categories:
        score = NOT_MEASURED if c.score is None else f"{c.score:.2f}"
        rows.append(
            f'<tr data-category="{c.name}"><td>{c.name}</td><td class="score">{score}'
            f"</td><td>{esc(c.formula)}</td><td>{esc(c.summary)}</td></tr>"
        )
    sections = []
    for c in cert.categories:
        figs = "".join(
            f'<tr data-figure="{c.name}.{f.name}"><td>{esc(f.label)}</td>'
            f'<td class="value">{esc(_value(f))}</td><td>{esc(f.formula)}<br><small>'
            f"{esc(f.detail)}</small></td><td>{' '.join(_ev_html(e) for e in f.evidence[:12])}"
            "</td></tr>"
            for f in c.figures
        )
        sections.append(
            f'<section id="cat-{c.name}"><h2>{c.name.capitalize()}</h2><table>'
            f"<tr><th>figure</th><th>value</th><th>formula</th><th>evidence</th>"
            f"</tr>{figs}</table></section>"
        )
    reasons = "".join(f"<li>{esc(r)}</li>" for r in cert.reasons) or "<li>all rules hold</li>"
    diff = "".join(f"<li>{esc(x)}</li>" for x in cert.diff)
    color = "#2e7d32" if cert.verdict == "pass" else "#c62828"
    return f"""<!doctype html><html><head><meta charset="utf-8">
<title>Readiness: {esc(cert.service)}/{esc(cert.environment)}</title><style>
body{{font-family:sans-serif;margin:24px;color:#222}}table{{border-collapse:collapse;margin:8px 0}}
td,th{{border:1px solid #ccc;padding:4px 8px;vertical-align:top;font-size:13px}}
#verdict{{color:#fff;background:{color};padding:6px 14px;border-radius:4px;display:inline-block}}
figure{{display:inline-block;margin:8px}}.evidence{{font-family:monospace;font-size:11px}}
</style></head><body>
<h1>Readiness certificate: {esc(cert.service)} / {esc(cert.environment)}</h1>
<p><span id="verdict" data-verdict="{cert.verdict}">{cert.verdict.upper()}</span>
window {cert.window_start:%Y-%m-%d %H:%M} → {cert.window_end:%Y-%m-%d %H:%M} UTC ·
{esc(cert.schema_version)} · {esc(cert.workflow_id)}</p>
<ul id="reasons">{reasons}</ul>
<table id="summary"><tr><th>category</th><th>score</th><th>formula</th><th>summary</th></tr>
{"".join(rows)}</table>
<div id="plots">{"".join(plots(cert, bundle))}</div>
{"".join(sections)}
<section id="diff"><h2>Since the previous certificate</h2><ul>{diff}</ul></section>
</body></html>
"""
