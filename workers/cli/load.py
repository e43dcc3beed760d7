"""``codectl load``: an open-model load against a loopback target (a plain command
function, registered on the root app by :mod:`workers.cli.root`). The scenario file is
read through :mod:`code_foundation.loader`; a bad scenario, profile or target exits 2
naming the problem, errors or drops during the run exit 1. The engine lives in
:mod:`loadtest`: the native one by default (``$CODE_LOAD_ENGINE=python``: the Python one)."""

from __future__ import annotations

import json
from typing import Any

import typer

from activities.settings import Settings
from code_foundation.loader import read_text
from workers.cli.common import console, fail, run_async


def load(
    scenario: str = typer.Argument(..., help="scenario YAML (targets, weights, headers, body)"),
    rate: float | None = typer.Option(None, "--rate", "-r", help="arrivals per second (constant)"),
    duration: str | None = typer.Option(None, "--duration", "-d", help='e.g. "30s", "5m"'),
    max_vus: int | None = typer.Option(None, "--max-vus", help="max requests in flight"),
    target: str | None = typer.Option(None, "--target", help="base URL (loopback only)"),
    slo_latency_ms: float | None = typer.Option(None, "--slo-latency-ms"),
    json_out: bool = typer.Option(False, "--json", help="print the stats as JSON, no live view"),
) -> None:
    """Run an open-model load against a loopback target (the scenario's profile, constant
    or ramping; --rate forces a constant arrival rate). Exit 1 on errors or drops."""
    from rich.live import Live

    from loadtest.native import load_run
    from loadtest.render import render_progress, render_stats
    from loadtest.scenario import make_profile, parse_scenario

    try:
        sc = parse_scenario(read_text(scenario), scenario)
        profile = make_profile(
            sc.load, rate=rate, duration=duration, max_vus=max_vus, source=f"{scenario} (load)"
        )
        ca = Settings().tls_ca_file  # HTTPS trust (allowed_targets is applied by codectl)
        run = load_run(
            sc,
            profile,
            base_url=target,
            slo_latency_ms=slo_latency_ms,
            ca_file=str(ca) if ca else None,
        )
    except Exception as exc:  # noqa: BLE001 - a CLI names the problem, not a traceback
        raise fail(exc, out=console) from None

    title = f"load {sc.name} → {target or sc.base_url}"
    if json_out:
        stats = run_async(run.run(), out=console)
        console.print_json(json.dumps({"summary": stats.summary(), "stats": stats.model_dump()}))
        return
    with Live(
        render_progress(run.progress(), title), console=console, refresh_per_second=4
    ) as live:

        def show(p: Any) -> None:
            live.update(render_progress(p, title))

        try:
            stats = run_async(run.run(on_progress=show, progress_every=0.5), out=console)
        except KeyboardInterrupt:
            console.print("[yellow]interrupted[/yellow]")
            raise typer.Exit(130) from None
    console.print(render_stats(stats, title=f"{sc.name}: {profile.executor} load"))
    if stats.errors or stats.dropped:
        raise typer.Exit(1)
