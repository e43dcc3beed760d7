"""A chaos journal as one self-contained HTML page: the summary, a timeline plot
(faults as spans from injection to revert, events as markers, every probe result as
a point: green in tolerance, red out of it, by phase) and a probe-latency plot, both
inline SVG drawn with matplotlib (Agg, no display, no network, no external files),
then the probe, fault and event tables. Pure: returns a string."""

from __future__ import annotations

import html
import io
from datetime import datetime

from chaos.messages import Journal

PHASES = ("before", "method", "during", "after")
_CSS = (
    "body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px}"
    "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;"
    "font-size:13px;text-align:left}.ok{color:#176b2c}.bad{color:#b00020;font-weight:600}"
    "svg{max-width:100%;height:auto}"
)


def _svg(fig: object) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")  # type: ignore[attr-defined]
    text = buf.getvalue()
    return text[text.find("<svg") :]


def _plots(j: Journal) -> tuple[str, str]:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 3.2))
    for i, f in enumerate(j.faults):
        if f.injected_at is not None:
            end = f.reverted_at or j.finished_at or f.injected_at
            x0, x1 = mdates.date2num(f.injected_at), mdates.date2num(end)
            ax.axvspan(x0, x1, color="#ffb74d", alpha=0.25 + 0.1 * (i % 2))
            ax.text(x0, len(PHASES) - 0.4, f"{f.fault} {f.target.id}", fontsize=7)
    for e in j.events:
        ax.axvline(mdates.date2num(e.at), color="#9e9e9e", linewidth=0.6, linestyle=":")
    for ok, color in ((True, "#2e7d32"), (False, "#c62828")):
        pts = [
            (mdates.date2num(p.started_at), PHASES.index(p.phase)) for p in j.probes if p.ok is ok
        ]
        if pts:
            xs, ys = zip(*pts, strict=True)
            label = "in tolerance" if ok else "out of tolerance"
            ax.scatter(xs, ys, c=color, s=18, label=label, zorder=3)
    ax.set_yticks(range(len(PHASES)), PHASES)
    ax.set_ylim(-0.6, len(PHASES) - 0.2)
    ax.set_title("timeline: faults (shaded), events (dotted), probe results")
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M:%S"))
    if j.probes:
        ax.legend(loc="lower right", fontsize=7)
    timeline = _svg(fig)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(10, 2.6))
    for name in sorted({p.name for p in j.probes}):
        mine = [p for p in j.probes if p.name == name]
        times = [mdates.date2num(p.started_at) for p in mine]
        ax.plot(times, [p.latency_ms for p in mine], marker=".", label=name)
    ax.set_ylabel("latency (ms)")
    ax.set_title("probe latency")
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M:%S"))
    if j.probes:
        ax.legend(loc="upper right", fontsize=7)
    latency = _svg(fig)
    plt.close(fig)
    return timeline, latency


def _t(dt: datetime | None) -> str:
    return dt.isoformat(timespec="milliseconds") if dt else "-"


def _table(head: list[str], rows: list[list[str]]) -> str:
    th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{th}</tr>{body}</table>"


def render_html(j: Journal) -> str:
    """The self-contained HTML report of ``j``."""
    e = html.escape
    timeline, latency = _plots(j)
    verdict = "bad" if j.deviated or j.status != "completed" else "ok"
    summary = _table(
        ["workflow", "status", "deviated", "reason", "actor", "seed", "started", "finished"],
        [
            [
                e(j.workflow_id),
                f'<span class="{verdict}">{e(j.status)}</span>',
                "yes" if j.deviated else "no",
                e(j.reason or "-"),
                e(j.actor + (f"; aborted by {j.aborted_by}" if j.aborted_by else "")),
                str(j.seed),
                _t(j.started_at),
                _t(j.finished_at),
            ]
        ],
    )
    probes = _table(
        ["time", "phase", "probe", "result", "status", "latency ms", "detail"],
        [
            [
                _t(p.started_at),
                p.phase,
                e(p.name),
                '<span class="ok">ok</span>' if p.ok else '<span class="bad">NOT OK</span>',
                str(p.status if p.status is not None else "-"),
                f"{p.latency_ms:.1f}",
                e(p.detail),
            ]
            for p in j.probes
        ],
    )
    faults = _table(
        ["action", "fault", "target", "injected", "reverted", "error"],
        [
            [
                e(f.action),
                e(f.fault),
                e(f.target.id),
                _t(f.injected_at),
                _t(f.reverted_at),
                e(f.inject_error or f.revert_error or "-"),
            ]
            for f in j.faults
        ],
    )
    events = _table(
        ["time", "kind", "message"],
        [[_t(ev.at), e(ev.kind), e(ev.message)] for ev in [*j.events, *j.rollbacks]],
    )
    d = j.during
    tally = (
        f"<p>fault window: {d.rounds} probe round(s), {d.probes} probe(s), {d.requests} "
        f"request(s), {d.failures} failure(s), {d.out_of_tolerance} out of tolerance; "
        f"rollbacks {'<span class=bad>FAILED</span>' if j.rollback_failed else 'ok'}</p>"
    )
    return (
        f'<!doctype html><html><head><meta charset="utf-8"><title>Chaos experiment: '
        f"{e(j.title)}</title><style>{_CSS}</style></head><body>"
        f"<h1>Chaos experiment: {e(j.title)}</h1>{summary}{tally}"
        f"<h2>Timeline</h2>{timeline}<h2>Probe latency</h2>{latency}"
        f"<h2>Probes</h2>{probes}<h2>Faults</h2>{faults}<h2>Events</h2>{events}"
        "</body></html>"
    )
