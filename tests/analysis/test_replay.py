"""Committed judge-mode DeploymentWorkflow histories (Kayenta rule, backend errors,
marginal decisions) replay without nondeterminism. Regenerate with
``python -m tests.analysis.record_histories`` after an intended, versioned change."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from workflows.client import data_converter
from workflows.deployment import DeploymentWorkflow
from workflows.rollback import RollbackWorkflow

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_history_replays(path: Path) -> None:
    replayer = Replayer(
        workflows=[DeploymentWorkflow, RollbackWorkflow], data_converter=data_converter()
    )
    await replayer.replay_workflow(WorkflowHistory.from_json(path.stem, path.read_text()))


def test_histories_are_committed() -> None:
    assert len(HISTORIES) >= 4
