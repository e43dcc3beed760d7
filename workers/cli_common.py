"""What every ``codectl`` sub-command shares: consoles, the caller's identity,
running a coroutine with CodeError → exit code, connecting to Temporal with a
clear error, and Web UI links."""

from __future__ import annotations

import asyncio
import getpass
import os
from collections.abc import Coroutine
from typing import Any, TypeVar

import typer
from rich.console import Console

from activities.settings import Settings
from code_foundation.errors import CodeError, ServerUnavailable

console = Console()
err = Console(stderr=True)
T = TypeVar("T")


def identity() -> str:
    return os.environ.get("CODE_IDENTITY") or getpass.getuser()


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    try:
        return asyncio.run(coro)
    except CodeError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(exc.exit_code) from None


async def client_for(settings: Settings) -> Any:
    from workers.worker import connect_from_settings

    try:
        return await connect_from_settings(settings)
    except RuntimeError as exc:
        raise ServerUnavailable(
            f"cannot reach Temporal at {settings.temporal_address} ({exc}); "
            "start the embedded stack with `codectl dev` or set CODE_TEMPORAL_ADDRESS"
        ) from None


def ui_link(settings: Settings, workflow_id: str) -> str:
    return f"{settings.temporal_ui_url}/namespaces/{settings.temporal_namespace}/workflows/{workflow_id}"
