"""``codectl audit`` and ``codectl config`` sub-apps (mounted by ``workers/cli.py``).

* ``audit verify``: verifies the ledger's hash chain (``rust_core.verify_chain``) at
  ``Settings().effective_ledger_url()``; prints OK, or the first broken record and
  exits 1.
* ``config show``: prints the effective settings with secrets masked
  (``Settings().masked()``), as a table or ``--json``.
"""

from __future__ import annotations

import json

import typer
from rich.console import Console
from rich.table import Table

audit_app = typer.Typer(help="Inspect the release ledger's audit chain.", no_args_is_help=True)
config_app = typer.Typer(help="Show the engine's effective configuration.", no_args_is_help=True)


@audit_app.callback()
def _audit() -> None:
    """Inspect the release ledger's audit chain."""  # keeps `verify` a sub-command


@config_app.callback()
def _config() -> None:
    """Show the engine's effective configuration."""


@audit_app.command("verify")
def verify() -> None:
    """Verify every audit record hashes its predecessor; exit 1 at the first broken link."""
    from activities.ledger import Ledger
    from activities.settings import Settings
    from code_foundation.errors import CodeError

    console = Console()
    url = Settings().effective_ledger_url()
    try:
        ledger = Ledger(url)
        records = ledger.audit_records()
        broken = ledger.verify_audit()
    except CodeError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(exc.exit_code) from None
    except Exception as exc:  # noqa: BLE001 - a CLI says what failed, not a traceback
        first = str(exc).splitlines()[0] if str(exc) else ""
        console.print(f"[red]error:[/red] cannot read the ledger: {type(exc).__name__}: {first}")
        raise typer.Exit(3) from None
    safe_url = _mask_url(url)
    if broken is None:
        console.print(f"OK: {len(records)} record(s) verified in {safe_url}")
        return
    rec = next((r for r in records if r.seq == broken), None)
    what = (
        f"seq {broken} ({rec.ts.isoformat()} {rec.actor} {rec.action} {rec.subject})"
        if rec is not None
        else f"seq {broken} (missing)"
    )
    console.print(
        f"[red]BROKEN[/red]: first broken link at {what} in {safe_url}; records from "
        f"seq {broken} on cannot be trusted"
    )
    raise typer.Exit(1)


def _mask_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001
        return url


@config_app.command("show")
def show(as_json: bool = typer.Option(False, "--json", help="print JSON")) -> None:
    """Print the effective settings (environment + config file), secrets masked."""
    from activities.settings import Settings

    values = Settings().masked()
    if "ledger_url" in values and values["ledger_url"]:
        values["ledger_url"] = _mask_url(str(values["ledger_url"]))
    if as_json:
        typer.echo(json.dumps(values, indent=2, sort_keys=True, default=str))
        return
    table = Table(title="CODE settings (secrets masked)")
    table.add_column("setting")
    table.add_column("value")
    for key in sorted(values):
        table.add_row(key, "" if values[key] is None else str(values[key]))
    Console().print(table)
