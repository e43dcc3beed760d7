"""Committed histories of every workflow type replay against today's code; a
non-deterministic change (a reordered activity) makes replay fail.
Regenerate with ``python scripts/record_histories.py`` after a versioned change."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from tests.workflows.reordered import ReorderedRollback
from workflows.client import data_converter
from workflows.deployment import DeploymentWorkflow
from workflows.rollback import RollbackWorkflow

HISTORIES = Path(__file__).resolve().parents[1] / "histories"
FILES = sorted(HISTORIES.glob("*.json"))


def load(path: Path) -> WorkflowHistory:
    return WorkflowHistory.from_json(path.stem, path.read_text())


def test_every_workflow_type_has_a_committed_history() -> None:
    kinds = {
        load(p).events[0].workflow_execution_started_event_attributes.workflow_type.name
        for p in FILES
    }
    assert {"DeploymentWorkflow", "RollbackWorkflow"} <= kinds


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
async def test_history_replays(path: Path) -> None:
    replayer = Replayer(
        workflows=[DeploymentWorkflow, RollbackWorkflow], data_converter=data_converter()
    )
    await replayer.replay_workflow(load(path))


async def test_non_deterministic_change_fails_replay() -> None:
    replayer = Replayer(workflows=[ReorderedRollback], data_converter=data_converter())
    result = await replayer.replay_workflow(
        load(HISTORIES / "rollback_manual.json"), raise_on_replay_failure=False
    )
    assert result.replay_failure is not None
    assert "nondetermin" in str(result.replay_failure).lower()
