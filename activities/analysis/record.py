"""Provenance of canary analysis: one :class:`AnalysisRecord` per interval, stored as
JSON in the artifact store under :func:`record_key`; only the key goes into history.

A record holds what is needed to re-judge the interval exactly: the window, the mode
and provider, the judge's version, the step's ``AnalysisSpec`` (``config``), the raw
series with the exact query text (judge mode) or the request windows (thresholds
mode), the judge's full output, the verdict, or the error that stopped it.

On disk (``schema`` ``code.analysis/v1``): a JSON object with sorted keys; absent parts
are left out; NaN values from Prometheus are kept (Python's json reads them back
exactly). :func:`load_record` validates a document into the model (anything else is a
``ValueError``); ``record["field"]`` reads the JSON document of a record, so tools that
treat records as documents (``codectl rejudge --json``) keep working."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_serializer

import rust_core
from activities.artifacts import ArtifactStore
from activities.platform.base import WindowSample
from workflows.models import AnalyseInput, AnalysisResult
from workflows.spec import AnalysisSpec

RECORD_SCHEMA: Literal["code.analysis/v1"] = "code.analysis/v1"


class _Part(BaseModel):
    model_config = ConfigDict(extra="allow")  # written by newer engines: kept, not refused


class RecordWindow(_Part):
    start: float
    end: float


class SeriesRecord(_Part):
    """One metric for one version: the exact query sent and what came back."""

    query: str
    timestamps: list[float] = Field(default_factory=list)
    values: list[float] = Field(default_factory=list)
    error: str | None = None  # NoData or a backend error for this side


class RecordError(_Part):
    """The metrics-backend error that stopped a judge-mode interval."""

    type: str
    message: str
    query: str = ""


class JudgeMetricRecord(_Part):
    """``rust_core.MetricResult`` as stored (NaN/inf as null)."""

    name: str
    classification: str
    reason: str = ""


class JudgeRecord(_Part):
    """``rust_core.JudgeResult.to_dict()`` as stored."""

    score: float | None = None
    classification: str
    reason: str = ""
    metrics: list[JudgeMetricRecord] = Field(default_factory=list)


class AnalysisRecord(BaseModel):
    """One analysed interval (see the module docstring)."""

    model_config = ConfigDict(populate_by_name=True, extra="allow")

    schema_: Literal["code.analysis/v1"] = Field(RECORD_SCHEMA, alias="schema")
    key: str
    workflow_id: str
    run_id: str
    step_index: int
    interval_index: int
    service: str
    environment: str
    canary_version: str
    baseline_version: str
    window: RecordWindow
    mode: Literal["thresholds", "judge"]
    provider: str
    judge_version: str
    config: AnalysisSpec
    created_at: float
    series: dict[str, dict[str, SeriesRecord]] | None = None  # judge: metric -> side -> data
    windows: dict[str, WindowSample] | None = None  # thresholds: version -> requests
    judge: JudgeRecord | None = None
    verdict: AnalysisResult | None = None
    error: RecordError | str | None = None  # thresholds mode stores the message only

    @field_serializer("config", "verdict")
    def _as_json(self, value: BaseModel | None) -> dict[str, Any] | None:
        return value.model_dump(mode="json") if value is not None else None

    @field_serializer("judge")
    def _judge(self, value: JudgeRecord | None) -> dict[str, Any] | None:
        return value.model_dump() if value is not None else None  # nulls kept, as written

    def document(self) -> dict[str, Any]:
        """The JSON document of this record (what :func:`dump_record` writes)."""
        return self.model_dump(by_alias=True, exclude_none=True)

    def __getitem__(self, field: str) -> Any:
        return self.document()[field]


def record_key(workflow_id: str, run_id: str, step_index: int, interval_index: int) -> str:
    """Artifact key of one analysis interval: analysis/<workflow id>/<run id>/step<i>-interval<n>.json."""
    return f"analysis/{workflow_id}/{run_id}/step{step_index:02d}-interval{interval_index:03d}.json"


def new_record(
    inp: AnalyseInput, a: AnalysisSpec, *, mode: Literal["thresholds", "judge"], provider: str,
    workflow_id: str,
) -> AnalysisRecord:  # fmt: skip
    """The record of interval ``inp`` before anything was read (filled in as analysis goes)."""
    return AnalysisRecord(
        key=record_key(workflow_id, inp.run_id, inp.step_index, inp.interval_index),
        workflow_id=workflow_id,
        run_id=inp.run_id,
        step_index=inp.step_index,
        interval_index=inp.interval_index,
        service=inp.service,
        environment=inp.environment,
        canary_version=inp.canary_version,
        baseline_version=inp.stable_version,
        window=RecordWindow(start=inp.window_start, end=inp.window_end),
        mode=mode,
        provider=provider,
        judge_version=rust_core.judge_version(),
        config=a,
        created_at=time.time(),
    )


def dump_record(record: AnalysisRecord) -> bytes:
    return json.dumps(record.document(), sort_keys=True).encode()


def load_record(data: bytes) -> AnalysisRecord:
    doc = json.loads(data)
    schema = doc.get("schema") if isinstance(doc, dict) else None
    if schema != RECORD_SCHEMA:
        raise ValueError(f"not an analysis record (schema {schema!r})")
    return AnalysisRecord.model_validate(doc)


async def store_record(store: ArtifactStore, record: AnalysisRecord) -> str:
    await asyncio.to_thread(store.put, record.key, dump_record(record), "application/json")
    return record.key
