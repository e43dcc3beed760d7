"""Tracing: an OTLP/HTTP receiver (oteltap) started by the test gets one trace per
deployment — StartWorkflow (client) → RunWorkflow → StartActivity → RunActivity →
code.<activity> domain span — through temporalio's TracingInterceptor on the client
and the worker built by ``workers.worker.build_worker``."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections import defaultdict

from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from activities.settings import Settings
from tests.ci import require_module
from tests.observability.helpers import canary_spec
from tests.servers import free_port
from tests.waiting import wait_until_async
from tests.workflows.fakes import FakePlatform
from workers import telemetry
from workers.worker import build_worker
from workflows.client import execute_deployment
from workflows.deployment import DeploymentWorkflow
from workflows.lane import ReleaseLaneWorkflow
from workflows.models import DeployInput, DeployResult
from workflows.rollback import RollbackWorkflow

oteltap = require_module("oteltap")


class EndedSpans(SpanProcessor):
    """Counts the spans that ended (each one is also handed to the exporter)."""

    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()  # spans end on activity threads too

    def on_end(self, span: ReadableSpan) -> None:
        with self._lock:
            self.count += 1


def _attr(span, key: str) -> str | None:  # type: ignore[no-untyped-def]
    for kv in span.attributes:
        if kv.key == key:
            return kv.value.string_value or str(kv.value.int_value)
    return None


async def test_one_trace_per_deployment(ts_env: WorkflowEnvironment) -> None:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    port = free_port()
    settings = Settings(otlp_endpoint=f"http://127.0.0.1:{port}")
    provider = TracerProvider(resource=Resource.create({"service.name": "code-test"}))
    ended = EndedSpans()  # how many spans the receiver must have seen after the flush
    provider.add_span_processor(ended)
    provider.add_span_processor(
        BatchSpanProcessor(
            OTLPSpanExporter(endpoint=f"http://127.0.0.1:{port}/v1/traces"),
            schedule_delay_millis=200,
        )
    )
    telemetry.init_tracing(settings, provider=provider)

    spans: list = []
    receiver = oteltap.OtelTapHttpProtobufReceiver(
        oteltap.OtelTapHttpProtobufReceiverSettings(http_port=port)
    )
    async with receiver:

        async def collect() -> None:
            async for s in receiver.stream_traces():
                spans.append(s)

        collector = asyncio.create_task(collect())
        # one turn of the loop runs collect() up to its first await: subscribed from here on
        await asyncio.sleep(0)
        base = ts_env.client.config()  # keep the time-skipping interceptor, add tracing
        client = Client(
            **{
                **base,
                "interceptors": [*base["interceptors"], *telemetry.client_interceptors(settings)],
            }
        )
        fake = FakePlatform()
        tq = f"trace-{uuid.uuid4()}"
        worker = build_worker(
            client,
            settings,
            task_queue=tq,
            activities=fake.activities(),
            workflows=[DeploymentWorkflow, RollbackWorkflow, ReleaseLaneWorkflow],
        )
        wids = [f"trace-{v}-{uuid.uuid4().hex[:6]}" for v in ("v1", "v2")]
        async with worker:
            for v, wid in zip(("v1", "v2"), wids, strict=True):
                res = await execute_deployment(
                    client,
                    DeploymentWorkflow.run,
                    DeployInput(spec=canary_spec(v), actor="t", set_search_attributes=False),
                    id=wid,
                    task_queue=tq,
                    result_type=DeployResult,
                )
                assert res.outcome == "promoted"
        assert provider.force_flush(), "spans not exported"
        # every span ended so far has been exported: wait until the receiver streamed them all
        await wait_until_async(lambda: len(spans) >= ended.count, 30, "all exported spans")
        collector.cancel()
    assert len(spans) == ended.count > 20

    by_trace: dict[bytes, list] = defaultdict(list)
    for s in spans:
        by_trace[s.trace_id].append(s)
    roots = {
        wid: [
            s
            for s in spans
            if s.name == "StartWorkflow:DeploymentWorkflow"
            and _attr(s, "temporalWorkflowID") == wid
        ]
        for wid in wids
    }
    for wid, found in roots.items():
        assert len(found) == 1, (wid, [s.name for s in spans])
        root = found[0]
        assert not root.parent_span_id  # the client's span starts the trace
        trace = by_trace[root.trace_id]
        ids = {s.span_id: s for s in trace}
        # everything of this deployment (workflow tasks, activities) sits in this one trace
        wf_ids = {_attr(s, "temporalWorkflowID") for s in trace if _attr(s, "temporalWorkflowID")}
        assert wf_ids == {wid}
        run_acts = [s for s in trace if s.name.startswith("RunActivity:")]
        names = {s.name.removeprefix("RunActivity:") for s in run_acts}
        assert {
            "validate.spec",
            "platform.apply_version",
            "platform.set_traffic",
            "ledger.record",
        } <= names
        for s in run_acts:  # activity spans are children inside the trace
            assert s.parent_span_id in ids, s.name
        domain = [s for s in trace if s.name.startswith("code.")]
        assert domain and all(ids[s.parent_span_id].name.startswith("RunActivity:") for s in domain)
        assert any(_attr(s, "code.service") == "shop" for s in domain)
    # two deployments, two traces
    assert len({roots[w][0].trace_id for w in wids}) == 2
    # the v2 canary ran its analysis activity inside its trace
    trace = by_trace[roots[wids[1]][0].trace_id]
    assert any(s.name == "RunActivity:analysis.run" for s in trace)
