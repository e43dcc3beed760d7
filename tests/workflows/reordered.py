"""A deliberately non-deterministic variant of RollbackWorkflow for the replay test."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow


@workflow.defn(name="RollbackWorkflow")
class ReorderedRollback:
    """A 'harmless' refactor that asks the ledger before the platform."""

    @workflow.run
    async def run(self, inp: dict) -> None:  # type: ignore[type-arg]
        await workflow.execute_activity(
            "ledger.last_known_good", inp, start_to_close_timeout=timedelta(seconds=5)
        )
