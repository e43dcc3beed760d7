"""Release lanes seen from ``codectl``: the ``lanes`` command, and the lane look-up that
``deploy`` / ``rollback`` with ``--concurrency reject`` do before starting anything.

* :func:`lane_workflow_id`: the lane workflow id of a service/environment/target as the
  workers on ``task_queue`` name it (``@<queue>`` appended off the default queue).
* :func:`lane_state`: the lane's ``state`` Query, or ``None`` when the lane is free
  (no lane workflow, or it has ended); ``ServerUnavailable`` (exit 3) when it cannot be
  read.
* :func:`busy_reason`: why a ``reject`` request would be refused now ("" when free).
* ``codectl lanes [SERVICE] [--env E] [--output json]``: the running lanes (found by the
  visibility query ``WorkflowType="ReleaseLaneWorkflow" AND ExecutionStatus="Running"``),
  each queried for its holder and queue. Read-only; exit 3 if Temporal is unreachable."""

from __future__ import annotations

import json
import sys
from typing import Any

import typer
from rich.table import Table

from activities.settings import Settings
from code_foundation.errors import ServerUnavailable
from code_foundation.names import SA_ENVIRONMENT, SA_SERVICE, TASK_QUEUE, W
from workers.cli.common import client_for, console, fail, run_async
from workers.cli.output import LANE_SCHEMA
from workflows.lane_models import LaneRequest, LaneState, lane_id, lane_target


def lane_workflow_id(
    service: str,
    environment: str,
    task_queue: str,
    platform: str = "local",
    namespace: str | None = None,
) -> str:
    """The id of the lane workflow the workers on ``task_queue`` use for this target."""
    lane = lane_id(service, environment, lane_target(platform, namespace))
    return lane if task_queue == TASK_QUEUE else f"{lane}@{task_queue}"


async def lane_state(client: Any, workflow_id: str) -> LaneState | None:
    """The lane's state; ``None`` when no lane workflow runs under ``workflow_id``."""
    from temporalio.client import WorkflowExecutionStatus, WorkflowQueryFailedError
    from temporalio.service import RPCError, RPCStatusCode

    handle = client.get_workflow_handle(workflow_id)
    try:
        desc = await handle.describe()
        if desc.status != WorkflowExecutionStatus.RUNNING:
            return None
        return await handle.query("state", result_type=LaneState)
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return None
        raise ServerUnavailable(f"cannot read release lane {workflow_id}: {exc}") from None
    except WorkflowQueryFailedError as exc:
        raise ServerUnavailable(f"release lane {workflow_id} did not answer: {exc}") from None


def busy_reason(state: LaneState | None) -> str:
    """Why the lane refuses a ``reject`` request now; "" when it is free."""
    if state is None or (state.holder is None and not state.queue):
        return ""
    ahead = state.holder or state.queue[0]
    waiting = f", {len(state.queue)} queued" if state.queue else ""
    return (
        f"{state.lane} is held by {ahead.holder_id} ({ahead.description or ahead.kind}"
        f"{waiting}); concurrency reject: nothing started"
    )


def _who(req: LaneRequest) -> dict[str, Any]:
    return {
        "workflow_id": req.holder_id,
        "run_id": req.holder_run_id,
        "kind": req.kind,
        "policy": req.policy,
        "description": req.description,
        "requested_at": req.requested_at.isoformat() if req.requested_at else None,
    }


def _attr(desc: Any, key: Any) -> str | None:
    attrs = getattr(desc, "typed_search_attributes", None)
    if attrs is None:
        return None
    try:
        return attrs.get(key)
    except Exception:  # noqa: BLE001 - an attribute that is not registered reads as absent
        return None


async def list_lanes(
    client: Any, task_queue: str, service: str | None, env: str | None
) -> list[dict[str, Any]]:
    """Every running lane of ``task_queue`` (optionally of one service/environment)."""
    query = f'WorkflowType="{W.LANE}" AND ExecutionStatus="Running"'
    rows: list[dict[str, Any]] = []
    async for wf in client.list_workflows(query):
        if wf.task_queue != task_queue:
            continue
        svc, environment = _attr(wf, SA_SERVICE), _attr(wf, SA_ENVIRONMENT)
        prefix = lane_workflow_id(service or "", env or "", task_queue).split("@")[0]
        if service and (svc != service if svc else not wf.id.startswith(f"lane-{service}-")):
            continue
        if env and (environment != env if environment else not wf.id.startswith(prefix)):
            continue
        try:
            state = await lane_state(client, wf.id)
        except Exception as exc:  # noqa: BLE001 - one lane that cannot answer is shown so
            rows.append({"lane": wf.id, "workflow_id": wf.id, "error": str(exc)})
            continue
        if state is None:
            continue  # it ended between the listing and the query
        rows.append(
            {
                "lane": state.lane,
                "workflow_id": wf.id,
                "service": svc,
                "environment": environment,
                "holder": _who(state.holder) if state.holder else None,
                "queue": [_who(q) for q in state.queue],
                "granted_total": state.granted_total,
            }
        )
    return sorted(rows, key=lambda r: r["lane"])


def lanes(
    service: str | None = typer.Argument(None, help="only this service's lanes"),
    env: str | None = typer.Option(None, "--env", "-e", help="only this environment"),
    output: str = typer.Option("text", "--output", "-o", help="text or json"),
) -> None:
    """List the release lanes in use: who holds each and who waits for it."""
    if output not in ("text", "json"):
        raise fail(f"--output must be text or json, not {output!r}", 2)
    raise typer.Exit(run_async(_lanes(service, env, output)))


async def _lanes(service: str | None, env: str | None, output: str) -> int:
    settings = Settings()
    client = await client_for(settings)
    rows = await list_lanes(client, settings.task_queue, service, env)
    if output == "json":  # an array (as before); every lane carries its schema
        rows = [{"schema": LANE_SCHEMA, **r} for r in rows]
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return 0
    if not rows:
        console.print("no release lane in use")
        return 0
    table = Table(title="release lanes")
    for col in ("lane", "holder", "queue", "granted"):
        table.add_column(col, overflow="fold")
    for r in rows:
        if "error" in r:
            table.add_row(r["lane"], f"[red]{r['error']}[/red]", "", "")
            continue
        h = r["holder"]
        holder = f"{h['workflow_id']} ({h['description'] or h['kind']})" if h else "-"
        queue = "\n".join(
            f"{i}. {q['workflow_id']} ({q['policy']})" for i, q in enumerate(r["queue"], 1)
        )
        table.add_row(r["lane"], holder, queue or "-", str(r["granted_total"]))
    console.print(table)
    return 0
