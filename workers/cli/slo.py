"""``codectl slo`` (typer sub-app ``slo_app``, mounted by :mod:`workers.cli.root`):

* ``rules SLO.yaml [-o FILE]`` generates Prometheus recording rules and multi-window
  burn-rate alerts; the file is read through :mod:`code_foundation.loader` and a bad
  one exits 2 naming every bad field.
* ``override WORKFLOW_ID`` sends the audited error-budget override (the ``approve``
  Update with ``override=true``, see :mod:`workers.cli.approvals`)."""

from __future__ import annotations

from pathlib import Path

import typer

from activities.settings import Settings
from code_foundation.errors import SpecError
from code_foundation.loader import read_text
from workers.cli.approvals import approve
from workers.cli.common import client_for, fail, identity, run_async

slo_app = typer.Typer(
    help="SLOs: burn-rate rules and error-budget overrides.", no_args_is_help=True
)


@slo_app.callback()
def _slo() -> None:
    """SLOs: burn-rate rules and error-budget overrides."""


@slo_app.command("rules")
def rules(
    slo_file: Path = typer.Argument(..., help="OpenSLO YAML (kind: SLO documents)"),
    output: Path | None = typer.Option(
        None, "-o", "--output", help="write here (e.g. deploy/prometheus/slo-rules.yaml)"
    ),
) -> None:
    """Generate Prometheus recording rules + SRE Workbook multi-window burn-rate alerts."""
    from workflows.slo import parse_slos, rules_yaml

    try:
        slos = parse_slos(read_text(slo_file), str(slo_file))
    except SpecError as exc:
        raise fail(exc) from None
    out = rules_yaml(slos)
    if output is None:
        typer.echo(out, nl=False)
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(out)
    typer.echo(f"wrote {len(slos)} SLO(s) to {output}")


@slo_app.command("override")
def override(
    workflow_id: str,
    comment: str = typer.Option("", help="why"),
    actor: str = typer.Option(None, help="your identity"),
) -> None:
    """Override a spent error budget for one waiting deployment (audited)."""
    settings = Settings()

    async def go() -> tuple[bool, str]:
        client = await client_for(settings)
        return await approve(
            client, settings, workflow_id, actor or identity(), comment, override=True
        )

    ok, msg = run_async(go())
    typer.echo(("override accepted: " if ok else "override rejected: ") + msg, err=not ok)
    raise typer.Exit(0 if ok else 1)
