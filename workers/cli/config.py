"""``codectl config`` (typer sub-app ``config_app``, mounted by :mod:`workers.cli.root`):
``config show`` prints the effective settings with secrets masked
(``Settings().masked()``, the ledger URL's password hidden), as a table or ``--json``."""

from __future__ import annotations

import json

import typer
from rich.table import Table

from workers.cli.common import console, mask_url

config_app = typer.Typer(help="Show the engine's effective configuration.", no_args_is_help=True)


@config_app.callback()
def _config() -> None:
    """Show the engine's effective configuration."""


@config_app.command("show")
def show(as_json: bool = typer.Option(False, "--json", help="print JSON")) -> None:
    """Print the effective settings (environment + config file), secrets masked."""
    from activities.settings import Settings

    values = Settings().masked()
    if "ledger_url" in values and values["ledger_url"]:
        values["ledger_url"] = mask_url(str(values["ledger_url"]))
    if as_json:
        typer.echo(json.dumps(values, indent=2, sort_keys=True, default=str))
        return
    table = Table(title="CODE settings (secrets masked)")
    table.add_column("setting")
    table.add_column("value")
    for key in sorted(values):
        table.add_row(key, "" if values[key] is None else str(values[key]))
    console.print(table)
