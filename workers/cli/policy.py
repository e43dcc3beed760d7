"""``codectl policy check FILE``: validate an access policy (roles bound to subjects and
groups, environment/service scopes, protected environments, ``require_mfa``, the two-person
rule) through :mod:`code_foundation.loader`; every problem is named, exit 2. ``--output
json`` prints the bindings it read."""

from __future__ import annotations

from pathlib import Path

import typer

from code_foundation.errors import CodeError
from code_foundation.loader import load_file
from workers.cli.common import console, fail
from workers.cli.output import OUTPUT_HELP, check_output, emit

policy_app = typer.Typer(help="Access policies (OIDC identity, RBAC).", no_args_is_help=True)


@policy_app.callback()
def _policy() -> None:
    """Access policies (OIDC identity, RBAC)."""


@policy_app.command("check")
def check(
    file: Path,
    output: str = typer.Option("text", "--output", "-o", help=OUTPUT_HELP),
) -> None:
    """Validate a policy file; exit 2 naming every problem."""
    from workflows.policy import Policy

    check_output(output)
    try:
        pol = load_file(Policy, file, what="access policy")
    except CodeError as exc:
        raise fail(exc) from None
    if output == "json":
        emit("code.policy.check/v1", {"ok": True, "policy": pol.model_dump(mode="json")})
        return
    console.print(
        f"OK: {file}: {len(pol.bindings)} binding(s); protected: "
        f"{', '.join(pol.protected_environments) or '-'}; mfa: {', '.join(pol.require_mfa) or '-'}"
        f"; two-person: {', '.join(pol.two_person) or '-'}"
    )
