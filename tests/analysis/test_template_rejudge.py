"""A run whose analysis came from a template with args records the *resolved* analysis
(no template reference, the args substituted into the queries), and ``codectl
rejudge`` (a real process over the artifact store) reproduces each interval's verdict
and score exactly, and the step's verdict."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from activities.analysis import analyse_interval, load_record, record_key
from activities.artifacts import LocalArtifactStore
from tests.analysis.test_provenance import FakeProvider, inp
from workers.cli.common import load_spec_file
from workflows.spec import DeploymentSpec

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "deploy" / "examples" / "analysis-templates"
WID = "deploy-shop-prod-v2"

SPEC = """
service: shop
environment: prod
version: v2
artifact: {command: ["true"]}
strategy:
  type: canary
  canary:
    steps:
      - set_weight: 20
      - analysis: {template: http-latency, args: {route: /api, interval: 10s, count: 2}}
"""


def series(canary_p99: float) -> dict[tuple[str, str], list[float]]:
    rng = random.Random(11)
    return {
        ("p99", "v1"): [0.20 + rng.uniform(-0.02, 0.02) for _ in range(30)],
        ("p99", "v2"): [canary_p99 + rng.uniform(-0.02, 0.02) for _ in range(30)],
        ("errors", "v1"): [0.0] * 30,
        ("errors", "v2"): [0.0] * 30,
    }


def templated_spec(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> DeploymentSpec:
    monkeypatch.setenv("CODE_ANALYSIS_TEMPLATES_DIR", str(TEMPLATES))
    p = tmp_path / "spec.yaml"
    p.write_text(SPEC)
    return load_spec_file(p)


def rejudge(state: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "workers.cli", "rejudge", WID, "--json"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "CODE_STATE_DIR": str(state), "COLUMNS": "200"},
        timeout=60,
    )


@pytest.mark.parametrize(("canary_p99", "verdict"), [(0.2, "pass"), (0.35, "fail")])
async def test_rejudge_of_a_templated_run_is_exact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, canary_p99: float, verdict: str
) -> None:
    spec = templated_spec(tmp_path, monkeypatch)
    store = LocalArtifactStore(tmp_path / "artifacts")
    results = [
        await analyse_interval(
            inp(spec, n),
            settings=None,
            platform=None,
            store=store,
            workflow_id=WID,
            provider=FakeProvider(series(canary_p99)),
        )
        for n in range(2)
    ]
    assert [r.verdict for r in results] == [verdict, verdict]

    # the record holds the resolved analysis: args in the queries, no template left
    rec = load_record(store.get(record_key(WID, "run-1", 1, 0)))
    config = rec["config"]
    assert "template" not in config and "args" not in config
    assert config["count"] == 2 and config["interval"] in ("10s", "PT10S", 10.0)
    queries = [m["query"] for m in config["metrics"]]
    assert all('route="/api"' in q and "{{" not in q for q in queries), queries
    step = spec.strategy.canary.steps[1].analysis  # type: ignore[union-attr]
    assert step is not None and config == step.model_dump(mode="json")

    # rejudged from the store alone (no template folder): the same verdicts and scores
    monkeypatch.delenv("CODE_ANALYSIS_TEMPLATES_DIR")
    out = rejudge(tmp_path)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    rows = doc["intervals"]
    assert [(r["old"], r["new"]) for r in rows] == [(verdict, verdict)] * 2
    assert [r["score_new"] for r in rows] == [r["score_old"] for r in rows]
    assert [r["score_old"] for r in rows] == [res.score for res in results]
    assert doc["steps"] == {"1": {"old": verdict, "new": verdict}}
