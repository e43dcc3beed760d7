"""The root ``codectl`` app: every command and sub-app, mounted explicitly in the order
``codectl --help`` lists them. This module imports the command modules; none of them
imports it (nor :mod:`workers.cli`)."""

from __future__ import annotations

import typer

from workers.cli import analysis, demo_release, deploy, lanes, load, release, stack
from workers.cli.artifacts import artifacts_app
from workers.cli.audit import audit_app
from workers.cli.certify import certify
from workers.cli.chaos import chaos_app
from workers.cli.codec import codec_app, codec_server
from workers.cli.config import config_app
from workers.cli.login import login, logout, whoami
from workers.cli.notify import notify_app
from workers.cli.policy import policy_app
from workers.cli.slo import slo_app
from workers.cli.soak import soak_app

app = typer.Typer(
    help="CODE: durable deployments, rollbacks, chaos and soak tests on Temporal.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.callback()
def _targets() -> None:
    """Make the ``allowed_targets`` setting the allow-list of this codectl process."""
    from activities.settings import Settings

    try:
        Settings().apply_targets()
    except ValueError as exc:
        if "allowed_targets" not in str(exc):
            return  # another setting is bad: the command that reads it says so
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


for _name, _command in (
    ("dev", stack.dev),
    ("down", stack.down),
    ("worker", stack.worker),
    ("schema", deploy.schema),
    ("validate", deploy.validate),
    ("deploy", deploy.deploy),
    ("status", deploy.status),
    ("pause", deploy.pause),
    ("resume", deploy.resume),
    ("abort", deploy.abort),
    ("approve", deploy.approve),
    ("rollback", deploy.rollback),
    ("history", deploy.history),
    ("lanes", lanes.lanes),
    ("release", release.release),
    ("demo", demo_release.demo),
    ("load", load.load),
    ("rejudge", analysis.rejudge),
    ("analyse", analysis.analyse),
    ("codec-server", codec_server),
    ("certify", certify),
    ("login", login),
    ("logout", logout),
    ("whoami", whoami),
):
    app.command(_name)(_command)

for _sub, _name in (
    (audit_app, "audit"),
    (artifacts_app, "artifacts"),
    (config_app, "config"),
    (notify_app, "notify"),
    (chaos_app, "chaos"),
    (soak_app, "soak"),
    (slo_app, "slo"),
    (codec_app, "codec"),
    (policy_app, "policy"),
):
    app.add_typer(_sub, name=_name)


def main() -> None:
    """The ``codectl`` console script."""
    app()
