"""A CODE chaos journal exported in the Chaos Toolkit journal format
(https://chaostoolkit.org/reference/api/journal/), so CTK tooling (reports,
dashboards) can read a CODE run: ``chaoslib-version``, ``platform``, ``node``,
``experiment``, ``start``/``end``/``duration``, ``status`` (``completed``,
``failed``, ``aborted``, ``interrupted``), ``deviated``, ``steady_states``
(``before``/``after`` with ``steady_state_met`` and their probe runs, ``during``),
``run`` (every fault injection and method probe as an activity run with ``status``
``succeeded``/``failed``, ``start``, ``end``, ``duration``, ``output``) and
``rollbacks`` (every revert). The native journal is kept under
``extensions[name=code]``. Pure."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from chaos.messages import FaultRecord, Journal, ProbeRecord

CHAOSLIB_VERSION = "code"
CTK_JOURNAL = "{prefix}/ctk/journal.json"
"""Where the report activity stores it: beside ``chaos/<id>/journal.json`` (CODE's own)."""


def _iso(dt: datetime | None) -> str | None:
    return dt.isoformat() if dt else None


def _dur(a: datetime | None, b: datetime | None) -> float:
    return round((b - a).total_seconds(), 6) if a and b else 0.0


def _probe_run(p: ProbeRecord) -> dict[str, Any]:
    return {
        "activity": {
            "type": "probe",
            "name": p.name,
            "provider": {"type": "code", "phase": p.phase},
        },
        "output": {"status": p.status, "latency_ms": p.latency_ms, "detail": p.detail},
        "status": "succeeded" if p.ok else "failed",
        "tolerance_met": p.ok,
        "start": _iso(p.started_at),
        "end": _iso(p.finished_at),
        "duration": _dur(p.started_at, p.finished_at),
    }


def _fault_run(f: FaultRecord) -> dict[str, Any]:
    run: dict[str, Any] = {
        "activity": {
            "type": "action",
            "name": f.action,
            "provider": {"type": "python", "module": "code.faults", "func": f.fault},
            "target": f.target.id,
        },
        "output": f.handle or None,
        "status": "failed" if f.inject_error else "succeeded",
        "start": _iso(f.injected_at),
        "end": _iso(f.injected_at),
        "duration": 0.0,
    }
    if f.inject_error:
        run["exception"] = [f.inject_error]
    return run


def _revert_run(f: FaultRecord) -> dict[str, Any]:
    run: dict[str, Any] = {
        "activity": {"type": "action", "name": f"revert {f.action}", "target": f.target.id},
        "output": None,
        "status": "failed" if f.revert_error or not f.reverted_at else "succeeded",
        "start": _iso(f.reverted_at),
        "end": _iso(f.reverted_at),
        "duration": 0.0,
    }
    if f.revert_error:
        run["exception"] = [f.revert_error]
    return run


def to_ctk_journal(j: Journal, platform: str = "", node: str = "") -> dict[str, Any]:
    """``j`` as a Chaos Toolkit journal document."""

    def phase(name: str) -> list[ProbeRecord]:
        return [p for p in j.probes if p.phase == name]

    before, after = phase("before"), phase("after")
    run = [_fault_run(f) for f in j.faults] + [_probe_run(p) for p in phase("method")]
    run.sort(key=lambda r: r["start"] or "")
    return {
        "chaoslib-version": CHAOSLIB_VERSION,
        "platform": platform,
        "node": node,
        "experiment": {
            "title": j.title,
            "extensions": [{"name": "code", "workflow_id": j.workflow_id, "seed": j.seed}],
        },
        "start": _iso(j.started_at),
        "end": _iso(j.finished_at),
        "duration": _dur(j.started_at, j.finished_at),
        "status": j.status,
        "deviated": j.deviated,
        "steady_states": {
            "before": {
                "steady_state_met": all(p.ok for p in before) if before else None,
                "probes": [_probe_run(p) for p in before],
            },
            "after": {
                "steady_state_met": all(p.ok for p in after) if after else None,
                "probes": [_probe_run(p) for p in after],
            },
            "during": [_probe_run(p) for p in phase("during")],
        },
        "run": run,
        "rollbacks": [_revert_run(f) for f in j.faults],
        "extensions": [{"name": "code", "journal": j.model_dump(mode="json")}],
    }
