"""What every ``codectl`` command shares; nothing here imports a command module.

* ``console`` (stdout) and ``err`` (stderr): the one rich Console of each stream.
* :func:`fail`: the one way a command fails. It prints ``error: <reason>`` and returns the
  ``typer.Exit`` to raise: 2 for bad input (``SpecError``, ``ConfigError``,
  ``TargetRefused``), 3 when a server cannot be reached (``ServerUnavailable``), 1 for any
  other error (or the code given with a plain message).
* :func:`run_async`: the one way a command runs a coroutine; a ``CodeError`` (with
  ``any_error``, any exception) becomes :func:`fail`.
* :func:`load_spec_file`: a deployment spec read through :mod:`code_foundation.loader`
  (a missing, binary or non-UTF-8 file is a ``SpecError``), parsed and validated locally.
* :func:`identity`, :func:`client_for`, :func:`ui_link`, :func:`mask_url`."""

from __future__ import annotations

import asyncio
import gc
import getpass
import os
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from activities.settings import Settings
from code_foundation.errors import CodeError, ServerUnavailable, SpecError
from code_foundation.loader import read_text
from workflows.spec import DeploymentSpec, parse_spec

console = Console()
err = Console(stderr=True)
T = TypeVar("T")


def fail(problem: BaseException | str, exit_code: int = 1, *, out: Console = err) -> typer.Exit:
    """Print why a command failed (one ``error:`` line per reason, never a traceback) and
    return the ``typer.Exit`` to raise. A ``CodeError`` brings its own exit code (a
    ``SpecError`` with one problem is one line: ``<file> is invalid: <problem>``); any other
    exception is named by its type; a plain message exits with ``exit_code``."""
    if isinstance(problem, SpecError) and len(problem.problems) == 1:
        reason, code = f"{problem.source} is invalid: {problem.problems[0]}", problem.exit_code
    elif isinstance(problem, CodeError):
        reason, code = str(problem), problem.exit_code
    elif isinstance(problem, BaseException):
        reason, code = f"{type(problem).__name__}: {problem}", exit_code
    else:
        reason, code = problem, exit_code
    out.print(f"[red]error:[/red] {escape(reason)}", soft_wrap=True)
    return typer.Exit(code)


def run_async(coro: Coroutine[Any, Any, T], *, out: Console = err, any_error: bool = False) -> T:
    """Run a command's coroutine. ``typer.Exit`` passes through; a ``CodeError`` fails with
    its exit code; with ``any_error`` every other exception fails with exit 1."""
    try:
        try:
            return asyncio.run(coro)
        finally:
            # free the Temporal client (its Rust half) now: left to the interpreter's exit,
            # a runtime thread may touch Python while it finalizes and abort the process
            # (temporalio/sdk-python#300; seen as exit 134/139 after a visibility query)
            gc.collect()
    except typer.Exit:
        raise
    except CodeError as exc:
        raise fail(exc, out=out) from None
    except Exception as exc:
        if not any_error:
            raise
        raise fail(exc, out=out) from None


def identity() -> str:
    """Who the caller is: ``$CODE_IDENTITY``, else the login name."""
    return os.environ.get("CODE_IDENTITY") or getpass.getuser()


def token_path(settings: Settings | None = None) -> Path:
    """Where ``codectl login`` keeps the caller's token (mode 0600)."""
    return (settings or Settings()).state_dir / "identity" / "token"


def token() -> str | None:
    """The caller's OIDC token, sent with every action: ``$CODE_TOKEN``, else the file
    ``$CODE_TOKEN_FILE``, else the one ``codectl login`` stored (None: not logged in)."""
    if os.environ.get("CODE_TOKEN"):
        return os.environ["CODE_TOKEN"].strip()
    path = Path(os.environ.get("CODE_TOKEN_FILE") or token_path())
    try:
        return path.read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


async def client_for(settings: Settings) -> Any:
    """A Temporal client, or ``ServerUnavailable`` (exit 3) saying how to start one."""
    from workers.worker import connect_from_settings

    try:
        return await connect_from_settings(settings)
    except RuntimeError as exc:
        raise ServerUnavailable(
            f"cannot reach Temporal at {settings.temporal_address} ({exc}); "
            "start the embedded stack with `codectl dev` or set CODE_TEMPORAL_ADDRESS"
        ) from None


def ui_link(settings: Settings, workflow_id: str) -> str:
    """The Web UI page of a workflow."""
    return f"{settings.temporal_ui_url}/namespaces/{settings.temporal_namespace}/workflows/{workflow_id}"


def mask_url(url: str) -> str:
    """A database URL with its password hidden (unchanged if it cannot be parsed)."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - an unparsable URL is shown as it is
        return url


def load_spec_file(path: Path) -> DeploymentSpec:
    """Read, parse and locally validate a spec; relative workdirs resolve against the file."""
    from activities.deploy import validate_spec
    from workers.cli.templates import resolve_spec_text

    spec = parse_spec(resolve_spec_text(read_text(path), str(path)), str(path))
    if spec.artifact.command is not None:
        workdir = Path(spec.artifact.workdir or ".")
        if not workdir.is_absolute():
            workdir = (path.parent / workdir).resolve()
        spec = spec.model_copy(
            update={"artifact": spec.artifact.model_copy(update={"workdir": str(workdir)})}
        )
    problems, _ = validate_spec(spec)
    if problems:
        raise SpecError(str(path), problems)
    return spec
