"""Rich renderings of load runs: the live progress panel and the final table."""

from __future__ import annotations

from rich.console import Group
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from loadtest.engine import Progress
from loadtest.stats import LoadStats


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v:,.2f}"


def render_progress(p: Progress, title: str = "load") -> Panel:
    grid = Table.grid(padding=(0, 2))
    grid.add_row(
        "elapsed",
        f"{p.elapsed_s:,.1f}s / {p.duration_s:,.1f}s",
        ProgressBar(total=max(p.duration_s, 1e-9), completed=p.elapsed_s, width=30),
    )
    grid.add_row("rate", f"target {p.target_rate:,.1f}/s", f"achieved {p.achieved_rate:,.1f}/s")
    grid.add_row("requests", f"sent {p.sent:,}  done {p.completed:,}", f"in flight {p.in_flight:,}")
    err = Text(f"errors {p.errors:,}", style="red" if p.errors else "green")
    drop = Text(f"dropped {p.dropped:,}", style="yellow" if p.dropped else "green")
    grid.add_row("problems", err, drop)
    grid.add_row("p99 so far", f"{_ms(p.p99_ms)} ms", "")
    return Panel(grid, title=title, border_style="blue")


def render_stats(stats: LoadStats, title: str = "results") -> Table:
    t = Table(title=title, header_style="bold")
    for col in ("name", "method", "requests", "ok", "errors", "err %", "timeouts"):
        t.add_column(col, justify="left" if col in ("name", "method") else "right")
    for col in ("p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "max ms"):
        t.add_column(col, justify="right")
    rows = [(k.name, k.method, k) for k in stats.keys]
    for name, method, k in rows:
        h = k.hist()
        qs = [float(h.quantile(q)) if h.count else None for q in (0.5, 0.9, 0.99, 0.999)]
        t.add_row(
            name,
            method,
            f"{k.count:,}",
            f"{k.ok:,}",
            Text(f"{k.errors:,}", style="red" if k.errors else ""),
            f"{100 * k.errors / k.count:.2f}" if k.count else "-",
            f"{k.timeouts:,}",
            *(_ms(q) for q in qs),
            _ms(float(h.max) if h.count else None),
        )
    h = stats.histogram()
    qs = [float(h.quantile(q)) if h.count else None for q in (0.5, 0.9, 0.99, 0.999)]
    t.add_section()
    t.add_row(
        Text("total", style="bold"),
        "",
        f"{stats.completed:,}",
        f"{stats.ok:,}",
        f"{stats.errors:,}",
        f"{100 * stats.error_rate():.2f}",
        f"{sum(k.timeouts for k in stats.keys):,}",
        *(_ms(q) for q in qs),
        _ms(float(h.max) if h.count else None),
    )
    t.caption = (
        f"planned {stats.planned:,}  sent {stats.sent:,}  dropped {stats.dropped:,}  "
        f"achieved {stats.achieved_rate():,.1f} req/s over {stats.duration_s:,.1f}s  "
        "(latency from intended send time)"
    )
    return t


def render_summary(stats: LoadStats) -> Group:
    return Group(render_stats(stats))
