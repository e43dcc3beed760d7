"""Committed histories of every workflow type replay against today's code; a
non-deterministic change (two activity calls of the real workflow class swapped, see
:mod:`tests.workflows.reordered`) makes the replay of every committed history fail.
Regenerate with ``python scripts/record_histories.py`` after a versioned change."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer
from temporalio.workflow import NondeterminismError

from tests.workflows.reordered import SwapActivities, plan_swap
from tests.workflows.test_release_replay import RELEASE_ID
from workers import registry
from workflows.chaos import ChaosExperimentWorkflow
from workflows.client import data_converter
from workflows.deployment import DeploymentWorkflow
from workflows.rollback import RollbackWorkflow
from workflows.soak import SoakTestWorkflow

TESTS = Path(__file__).resolve().parents[1]
HISTORIES = TESTS / "histories"
FILES = sorted(HISTORIES.glob("*.json"))
# every committed history of every workflow type, for the negative controls
ALL_FILES = sorted(TESTS.glob("**/histories/*.json"))


def _activity_types(path: Path) -> set[str]:
    h = WorkflowHistory.from_json(path.stem, path.read_text())
    return {
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in h.events
        if e.HasField("activity_task_scheduled_event_attributes")
    }


# the swap control needs two activity types; a lane history has one (its holder check),
# so its determinism is pinned by the clean replay above only
SWAPPABLE = [p for p in ALL_FILES if len(_activity_types(p)) >= 2]
# every workflow the worker registers, by workflow type name (their class names)
CLASSES: dict[str, type] = {cls.__name__: cls for cls in registry.workflows()}


def load(path: Path) -> WorkflowHistory:
    """The history under its file's stem, or, for a release history, the id it was recorded
    with (a release derives its children's ids from its own: a different id would make
    the clean replay fail too)."""
    wid = RELEASE_ID if path.stem.startswith("release_") else path.stem
    return WorkflowHistory.from_json(wid, path.read_text())


def kind(history: WorkflowHistory) -> str:
    return history.events[0].workflow_execution_started_event_attributes.workflow_type.name


def test_every_workflow_type_has_a_committed_history() -> None:
    kinds = {
        load(p).events[0].workflow_execution_started_event_attributes.workflow_type.name
        for p in FILES
    }
    assert {"DeploymentWorkflow", "RollbackWorkflow", "ReleaseLaneWorkflow"} <= kinds


def test_histories_from_before_and_after_release_lanes() -> None:
    """Both shapes are pinned: runs recorded before lanes (no patch marker) and after."""
    stems = {p.stem for p in FILES}
    for name in ("deployment_canary_promoted", "deployment_canary_rolled_back", "rollback_manual"):
        assert name in stems and f"{name}_lanes" in stems
    marked = [
        e
        for e in load(HISTORIES / "deployment_canary_promoted_lanes.json").events
        if e.HasField("marker_recorded_event_attributes")
    ]
    assert marked, "the lane-era history records its workflow.patched markers"


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
async def test_history_replays(path: Path) -> None:
    replayer = Replayer(workflows=list(CLASSES.values()), data_converter=data_converter())
    await replayer.replay_workflow(load(path))


def test_every_workflow_type_has_a_negative_control() -> None:
    kinds = {kind(load(p)) for p in ALL_FILES}
    assert kinds <= set(CLASSES), kinds - set(CLASSES)  # histories of registered types only
    required = {DeploymentWorkflow, RollbackWorkflow, ChaosExperimentWorkflow, SoakTestWorkflow}
    assert {c.__name__ for c in required} <= kinds


@pytest.mark.parametrize(
    "path", SWAPPABLE, ids=[f"{p.parent.parent.name}-{p.stem}" for p in SWAPPABLE]
)
@pytest.mark.parametrize("which", ["first", "last"])
async def test_non_deterministic_change_fails_replay(path: Path, which: str) -> None:
    """The real class replays its committed history cleanly; the same class with two
    activity calls swapped (the first or the last swappable pair) does not."""
    history = load(path)
    cls = CLASSES[kind(history)]
    clean = await Replayer(workflows=[cls], data_converter=data_converter()).replay_workflow(
        history, raise_on_replay_failure=False
    )
    assert clean.replay_failure is None, clean.replay_failure
    swap = plan_swap(history, which)
    replayer = Replayer(
        workflows=[cls], interceptors=[SwapActivities(swap)], data_converter=data_converter()
    )
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert isinstance(result.replay_failure, NondeterminismError), (swap, result.replay_failure)
    # the error names the activity the reordered code scheduled where the history has another
    assert swap.second in str(result.replay_failure), result.replay_failure
