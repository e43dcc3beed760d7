"""Soak report rendering: one PNG (matplotlib, Agg) plus HTML and Markdown.

Pure rendering: returns ``{name: (bytes, content_type)}``; storing is the
caller's business. The HTML embeds the PNG (data URI) so one file is enough;
the Markdown links ``report.png`` next to it."""

from __future__ import annotations

import base64
import html
import io
from datetime import UTC, datetime
from typing import Any

from code_foundation.durations import format_duration
from loadtest.checks import rss_trend
from loadtest.soak_models import SoakReportInput


def _fmt(v: Any, spec: str = ",.2f") -> str:
    return "-" if v is None else format(v, spec)


def render_png(inp: SoakReportInput) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = inp.carry.slices
    t = [x.end_s / 60 for x in s]
    fig, axes = plt.subplots(3, 1, figsize=(10, 10), sharex=False)
    ax = axes[0]
    for attr, label in (("p50_ms", "p50"), ("p90_ms", "p90"), ("p99_ms", "p99")):
        ax.plot(t, [getattr(x, attr) or float("nan") for x in s], marker=".", label=label)
    ax.set_ylabel("latency ms")
    ax.set_title(f"{inp.plan.name}: latency percentiles per slice")
    ax.legend(loc="upper left")
    ax.grid(alpha=0.3)
    ax = axes[1]
    ax.plot(
        t,
        [100 * x.errors / x.completed if x.completed else 0 for x in s],
        color="red",
        marker=".",
        label="error %",
    )
    ax.set_ylabel("error %")
    ax2 = ax.twinx()
    ax2.plot(t, [x.achieved_rate for x in s], color="gray", linestyle="--", label="achieved req/s")
    ax2.axhline(inp.plan.rate, color="gray", linewidth=0.5)
    ax2.set_ylabel("req/s")
    ax.set_title("error rate and achieved rate")
    ax.grid(alpha=0.3)
    ax = axes[2]
    pts = inp.carry.trend
    if pts:
        xs = [p.t_s / 60 for p in pts]
        ax.plot(xs, [p.rss_mb for p in pts], ".", markersize=3, label="RSS MB")
        rc = inp.plan.checks.resources
        tr = rss_trend(pts, rc.warmup.total_seconds() if rc else 0.0)
        if tr is not None:
            line = [tr["intercept"] + tr["slope"] * (p.t_s / 3600) for p in pts]
            ax.plot(
                xs,
                line,
                "-",
                color="black",
                label=f"Theil-Sen {tr['slope']:.1f} MB/h (p={tr['p_value']:.2g})",
            )
        ax.legend(loc="upper left")
    else:
        ax.text(0.5, 0.5, "no resource samples (URL target)", ha="center", transform=ax.transAxes)
    ax.set_xlabel("minutes since start")
    ax.set_ylabel("RSS MB")
    ax.set_title("target resource trend")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return buf.getvalue()


def _rows(inp: SoakReportInput) -> tuple[list[tuple[str, str]], list[list[str]]]:
    c, p = inp.carry, inp.plan
    tot = c.totals
    q = tot.quantiles()
    head = [
        ("verdict", inp.verdict.upper()),
        ("reason", inp.reason or "-"),
        ("target", p.target.describe()),
        (
            "rate",
            f"{p.rate:g}/s for {format_duration(p.duration)} in {format_duration(p.slice)} slices",
        ),
        ("slices", f"{len(c.counted)} of {p.n_slices} ({c.runs} run(s), continue-as-new)"),
        (
            "requests",
            f"{tot.completed:,} done, {tot.errors:,} errors ({tot.error_rate():.3%}), "
            f"{tot.dropped:,} dropped",
        ),
        ("latency", " ".join(f"{k} {_fmt(v)}ms" for k, v in q.items())),
    ]
    if c.trend:
        rc = p.checks.resources
        tr = rss_trend(c.trend, rc.warmup.total_seconds() if rc else 0.0)
        if tr is not None:
            head.append(
                (
                    "rss slope",
                    f"{tr['slope']:.2f} MB/h [{tr['low_slope']:.2f}, "
                    f"{tr['high_slope']:.2f}], Mann-Kendall p={tr['p_value']:.3g}",
                )
            )
    if c.last_check is not None:
        for o in c.last_check.outcomes:
            head.append((f"check: {o.name}", ("ok — " if o.ok else "BREACH — ") + o.detail))
    rows = [
        [
            str(x.index),
            f"{x.end_s / 60:.1f}",
            f"{x.completed:,}",
            f"{x.errors:,}",
            f"{x.dropped:,}",
            _fmt(x.achieved_rate, ".1f"),
            _fmt(x.p50_ms),
            _fmt(x.p99_ms),
            _fmt(x.rss_mb, ".1f"),
            str(x.attempt),
        ]
        for x in c.slices
    ]
    return head, rows


_COLS = [
    "slice",
    "end min",
    "requests",
    "errors",
    "dropped",
    "req/s",
    "p50 ms",
    "p99 ms",
    "RSS MB",
    "attempt",
]


def render_markdown(inp: SoakReportInput) -> str:
    head, rows = _rows(inp)
    out = [
        f"# Soak report: {inp.plan.name}",
        "",
        f"Workflow `{inp.workflow_id}`, generated "
        f"{datetime.now(UTC).isoformat(timespec='seconds')}",
        "",
    ]
    out += ["| | |", "|---|---|"] + [f"| {k} | {v} |" for k, v in head]
    out += ["", "![percentiles, errors, resources](report.png)", "", "## Slices", ""]
    out += ["| " + " | ".join(_COLS) + " |", "|" + "---|" * len(_COLS)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out) + "\n"


def render_html(inp: SoakReportInput, png: bytes) -> str:
    head, rows = _rows(inp)
    color = {"pass": "#1a7f37", "fail": "#cf222e"}.get(inp.verdict, "#9a6700")
    e = html.escape
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>Soak {e(inp.plan.name)}</title><style>body{{font-family:sans-serif;margin:2em}}"
        "td,th{padding:2px 8px;border-bottom:1px solid #ddd;text-align:right}"
        "td:first-child,th:first-child{text-align:left}</style></head><body>",
        f"<h1>Soak report: {e(inp.plan.name)} <span style='color:{color}'>{e(inp.verdict.upper())}"
        "</span></h1>",
        f"<p>Workflow <code>{e(inp.workflow_id)}</code></p><table>",
        *[f"<tr><th>{e(k)}</th><td style='text-align:left'>{e(v)}</td></tr>" for k, v in head],
        "</table>",
        f"<img alt='soak charts' src='data:image/png;base64,{base64.b64encode(png).decode()}'>",
        "<h2>Slices</h2><table><tr>" + "".join(f"<th>{c}</th>" for c in _COLS) + "</tr>",
        *["<tr>" + "".join(f"<td>{e(c)}</td>" for c in r) + "</tr>" for r in rows],
        "</table></body></html>",
    ]
    return "\n".join(parts)


def render_report(inp: SoakReportInput) -> dict[str, tuple[bytes, str]]:
    png = render_png(inp)
    return {
        "report.png": (png, "image/png"),
        "report.html": (render_html(inp, png).encode(), "text/html; charset=utf-8"),
        "report.md": (render_markdown(inp).encode(), "text/markdown; charset=utf-8"),
        "result.json": (inp.carry.model_dump_json().encode(), "application/json"),
    }
