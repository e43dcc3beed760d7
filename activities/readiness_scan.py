"""Evidence read from Temporal for readiness certificates: the service's workflow runs
(visibility by the ``CodeService`` search attribute, plus soak runs whose plan targets the
service), soak results, and the secret scan of their histories.

* :func:`list_runs` — executions of the window as :class:`RunInfo` (Web UI links).
* :func:`soak_runs` — closed ``SoakTestWorkflow`` runs whose plan targets the service,
  summarised as :class:`SoakRun` (p50/p95/p99 from the merged sketches, last drift / creep /
  RSS check values, per-slice p99).
* :func:`scan_history` — one history's raw bytes searched for every secret value (plain and
  base64); payload count and how many carry ``encoding=binary/encrypted``. A hit names the
  workflow and the secret's *name*, never its value.
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

from code_foundation.names import W
from workflows.readiness_models import Evidence, RunInfo, SoakRun

ENCRYPTED = b"binary/encrypted"


def _ts(dt: datetime) -> str:
    # with microseconds: a run started in the window's last second is inside it
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


async def list_runs(
    client: Any, service: str, start: datetime, end: datetime, ui_base: str
) -> list[RunInfo]:
    q = f'CodeService = "{service}" AND StartTime >= "{_ts(start)}" AND StartTime <= "{_ts(end)}"'
    out: list[RunInfo] = []
    async for wf in client.list_workflows(q):
        sa = wf.search_attributes or {}
        kind = (sa.get("CodeKind") or [""])[0] if isinstance(sa, dict) else ""
        env = (sa.get("CodeEnvironment") or [""])[0] if isinstance(sa, dict) else ""
        out.append(
            RunInfo(
                workflow_id=wf.id,
                run_id=wf.run_id,
                workflow_type=wf.workflow_type,
                status=wf.status.name if wf.status else "UNKNOWN",
                start_time=wf.start_time,
                close_time=wf.close_time,
                kind=str(kind),
                url=f"{ui_base}{wf.id}" if ui_base else None,
                environment=str(env),
                parent_id=wf.parent_id,
            )
        )
    return out


def _check(result: Any, name: str) -> float | None:
    last = result.last_check
    for o in last.outcomes if last else []:
        if o.name == name:
            return float(o.value) if o.value is not None else None
    return None


async def soak_runs(
    client: Any, service: str, environment: str, start: datetime, end: datetime, ui_base: str
) -> tuple[list[SoakRun], list[str]]:
    """Closed soak runs of the window targeting the service, and the ids of every soak
    history looked at (for the secret scan)."""
    from loadtest.soak_models import SoakInput, SoakResult

    q = (
        f'WorkflowType = "{W.SOAK}" AND ExecutionStatus = "Completed" '
        f'AND StartTime >= "{_ts(start)}" AND StartTime <= "{_ts(end)}"'
    )
    runs: list[SoakRun] = []
    seen: list[str] = []
    async for wf in client.list_workflows(q):
        handle = client.get_workflow_handle(wf.id, run_id=wf.run_id, result_type=SoakResult)
        history = await handle.fetch_history()
        first = history.events[0].workflow_execution_started_event_attributes
        try:
            (inp,) = await client.data_converter.decode(first.input.payloads, [SoakInput])
        except Exception:  # noqa: BLE001, S112 - an input we cannot read is not this service's soak
            continue
        t = inp.plan.target
        if t.service != service or t.environment != environment:
            continue
        seen.append(wf.id)
        try:
            res = await handle.result(follow_runs=False)
        except Exception:  # noqa: BLE001, S112 - continued-as-new: the last run has the result
            continue
        q_ = {
            k: (res.stats.histogram().quantile(v) if res.stats.completed else None)
            for k, v in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))
        }
        rep = res.report
        arts = [
            Evidence(kind="artifact", ref=k)
            for k in ((rep.html_key, rep.markdown_key) if rep else ())
            if k
        ]
        runs.append(
            SoakRun(
                workflow_id=wf.id,
                name=inp.plan.name,
                verdict=res.verdict,
                reason=res.reason,
                started_at=wf.start_time,
                rate=inp.plan.rate,
                achieved_rate=res.stats.achieved_rate(),
                completed=res.stats.completed,
                errors=res.stats.errors,
                p50_ms=q_["p50"],
                p95_ms=q_["p95"],
                p99_ms=q_["p99"],
                p99_drift=_check(res, "p99 drift"),
                error_creep=_check(res, "error creep"),
                rss_slope_mb_h=_check(res, "rss trend"),
                slice_p99=[s.p99_ms for s in res.summaries if s.p99_ms is not None],
                kind="load" if inp.plan.name.startswith("load") else "soak",
                artifacts=arts,
            )
        )
    return runs, seen


def needles(secrets: dict[str, str]) -> dict[str, list[bytes]]:
    """Each secret (by name) as the byte strings that would betray it in a history."""
    out: dict[str, list[bytes]] = {}
    for name, value in secrets.items():
        if len(value) < 4:  # too short to be told from noise; reported as checked anyway
            continue
        raw = value.encode()
        out[name] = [raw, base64.b64encode(raw), base64.b64encode(raw).rstrip(b"=")]
    return out


async def scan_history(
    client: Any, workflow_id: str, secrets: dict[str, list[bytes]]
) -> tuple[list[str], int, int]:
    """(hits "<workflow>: <secret name>", payloads, encrypted payloads) of one history."""
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    from temporalio.api.history.v1 import History

    data = History(events=history.events).SerializeToString()
    hits = [f"{workflow_id}: {name}" for name, ns in secrets.items() if any(n in data for n in ns)]
    payloads = encrypted = 0
    for ev in history.events:
        for p in _payloads(ev):
            payloads += 1
            encrypted += int(p.metadata.get("encoding") == ENCRYPTED)
    return hits, payloads, encrypted


def _payloads(msg: Any) -> list[Any]:
    """Every ``Payload`` in a protobuf message (walked by descriptor, maps included)."""
    if msg.DESCRIPTOR.full_name == "temporal.api.common.v1.Payload":
        return [msg]
    out: list[Any] = []
    for field, value in msg.ListFields():
        mt = field.message_type
        if mt is None:
            continue
        if mt.GetOptions().map_entry:
            if mt.fields_by_name["value"].message_type is None:
                continue
            items = list(value.values())
        elif field.is_repeated:
            items = list(value)
        else:
            items = [value]
        for item in items:
            out += _payloads(item)
    return out
