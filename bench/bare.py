"""The bare workflow the engine benchmark compares against."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.models import NoopInput


@workflow.defn(name="BareWorkflow")
class BareWorkflow:
    """N sequential no-op activities: the floor any orchestration pays."""

    @workflow.run
    async def run(self, n: int) -> int:
        for i in range(n):
            await workflow.execute_activity(
                "bench.noop",
                NoopInput(key=str(i)),
                start_to_close_timeout=timedelta(seconds=30),
                result_type=NoopInput,
            )
        return n
