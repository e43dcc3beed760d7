"""Committed ReleaseWorkflow histories replay against today's code: a release promoted
through staging and two prod waves (with a bake), and one aborted in wave 2 whose
changed targets were restored by child rollbacks (both recorded before the
``release-not-promoted-fails`` patch: they end COMPLETED), and one rolled back by a spent
error budget after the patch (``release_rolled_back_red``: FAILED with its result).
Regenerate with
``python -m tests.workflows.test_release_replay`` after a versioned change."""

from __future__ import annotations

import asyncio
import shutil
import sys
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from workflows.client import data_converter
from workflows.release import ReleaseWorkflow

HISTORIES = Path(__file__).resolve().parent / "histories"
FILES = sorted(HISTORIES.glob("release_*.json"))
RELEASE_ID = "release-shop-v2"  # the id the histories were recorded with


def test_release_histories_are_committed() -> None:
    assert {p.stem for p in FILES} >= {
        "release_promoted",
        "release_aborted",
        "release_rolled_back_red",
    }


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
async def test_release_history_replays(path: Path) -> None:
    history = WorkflowHistory.from_json(RELEASE_ID, path.read_text())
    replayer = Replayer(workflows=[ReleaseWorkflow], data_converter=data_converter())
    await replayer.replay_workflow(history)


async def _record(names: tuple[str, ...]) -> None:  # pragma: no cover - a maintenance tool
    from temporalio.testing import WorkflowEnvironment

    from tests.workflows import test_release as t
    from workflows.models import ControlInput

    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=data_converter(),
        test_server_existing_path=shutil.which("temporal-test-server"),
    )
    try:
        if "release_rolled_back_red" in names:
            await _record_red(env)
        for name in names:
            if name == "release_rolled_back_red":
                continue
            fake = t.MultiFake()
            for e, cl in [
                ("staging", None),
                ("prod", "eu-canary"),
                ("prod", "eu-1"),
                ("prod", "us-1"),
            ]:
                fake.seed(e, cl, "v1")
            slow = t.CANARY.replace(
                "- set_weight: 20", "- set_weight: 20\n        - pause: {duration: 5h}"
            )
            w, tq = t.worker(env, fake)
            async with w:
                p = t.pipeline(t.PROD, deployment=slow if name == "release_aborted" else t.CANARY)
                h = await env.client.start_workflow(
                    ReleaseWorkflow.run,
                    t.ReleaseInput(pipeline=p, version="v2", set_search_attributes=False),
                    id=RELEASE_ID,
                    task_queue=tq,
                )
                if name == "release_aborted":
                    await t._skip_until_wave_two(env, h)
                    await h.signal(ReleaseWorkflow.abort, ControlInput(identity="carol"))
                await h.result()
                history = await h.fetch_history()
            (HISTORIES / f"{name}.json").write_text(history.to_json())
            print("wrote", name, len(history.events), "events", file=sys.stderr)
    finally:
        await env.shutdown()


async def _record_red(env: object) -> None:  # pragma: no cover - a maintenance tool
    from tests.workflows import test_release as t
    from tests.workflows import test_release_outcome as o
    from workflows.release_client import release_result

    w, tq = t.worker(env, o.fake(spent=True))  # type: ignore[arg-type]
    async with w:
        h = await env.client.start_workflow(  # type: ignore[attr-defined]
            ReleaseWorkflow.run,
            t.ReleaseInput(pipeline=o.budget_pipeline(), version="v2", set_search_attributes=False),
            id=RELEASE_ID,
            task_queue=tq,
            result_type=t.ReleaseResult,
        )
        await release_result(h)
        history = await h.fetch_history()
    (HISTORIES / "release_rolled_back_red.json").write_text(history.to_json())
    print("wrote release_rolled_back_red", len(history.events), "events", file=sys.stderr)


if __name__ == "__main__":
    asyncio.run(_record(tuple(sys.argv[1:]) or ("release_promoted", "release_aborted")))
