"""Provenance and re-judging: each interval is stored (raw series, query text, judge
version, config, verdict) under a key derived from workflow id / run / step / interval;
re-judging the stored data reproduces the verdict exactly, and other thresholds change
it as expected (also through ``codectl rejudge``)."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import rust_core
from activities.analysis import analyse_interval, load_record, record_key, rejudge_record
from activities.artifacts import LocalArtifactStore
from activities.metrics.base import MetricsUnavailable, NoData, Scope, Series, render
from activities.platform.local import WindowSample
from workflows.models import AnalyseInput
from workflows.spec import AnalysisMetric, AnalysisSpec, DeploymentSpec

ROOT = Path(__file__).resolve().parents[2]
LAT = 'avg(latency{service="{service}",version="{version}"})'
ERR = 'avg(errors{service="{service}",version="{version}"})'


class FakeProvider:
    name = "fake"

    def __init__(self, series: dict[tuple[str, str], list[float]], down: bool = False) -> None:
        self.series, self.down = series, down

    def describe(self) -> str:
        return "fake prometheus"

    async def fetch(
        self, m: AnalysisMetric, scope: Scope, start: float, end: float, step: float
    ) -> Series:
        q = render(m.query or "", scope)
        if self.down:
            raise MetricsUnavailable(f"Prometheus is unreachable on query: {q}", query=q)
        vals = self.series.get((m.name, scope.version))
        if vals is None:
            raise NoData(f"no data: {q}", query=q)
        return Series(query=q, timestamps=[start + i for i in range(len(vals))], values=vals)

    async def validate(self, m: AnalysisMetric, scope: Scope) -> None:
        return None


def analysis(**kw: Any) -> AnalysisSpec:
    return AnalysisSpec.model_validate(
        {
            "interval": "10s",
            "count": 2,
            "groups": {"latency": 50, "errors": 50},
            "metrics": [
                {"name": "latency", "query": LAT, "group": "latency", "allowed_increase": 1.1},
                {"name": "errors", "query": ERR, "group": "errors"},
            ],
            **kw,
        }
    )


def deploy_spec(a: AnalysisSpec) -> DeploymentSpec:
    return DeploymentSpec.model_validate(
        {
            "service": "shop",
            "environment": "prod",
            "version": "v2",
            "artifact": {"command": ["true"]},
            "strategy": {
                "type": "canary",
                "canary": {"steps": [{"set_weight": 20}, {"analysis": a.model_dump(mode="json")}]},
            },
        }
    )


def inp(spec: DeploymentSpec, n: int = 0) -> AnalyseInput:
    return AnalyseInput(
        service="shop",
        environment="prod",
        canary_version="v2",
        stable_version="v1",
        window_start=1000.0,
        window_end=1010.0 + 10 * n,
        spec=spec,
        step_index=1,
        interval_index=n,
        run_id="run-1",
        analysis_start=1000.0,
    )


def slow_canary() -> dict[tuple[str, str], list[float]]:
    rng = random.Random(7)
    return {
        ("latency", "v1"): [50 + rng.uniform(-5, 5) for _ in range(30)],
        ("latency", "v2"): [70 + rng.uniform(-7, 7) for _ in range(30)],  # +40%
        ("errors", "v1"): [0.0] * 30,
        ("errors", "v2"): [0.0] * 30,
    }


async def test_stored_record_and_exact_rejudge(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path)
    spec = deploy_spec(analysis())
    res = await analyse_interval(
        inp(spec),
        settings=None,
        platform=None,
        store=store,
        workflow_id="deploy-shop-prod-v2",
        provider=FakeProvider(slow_canary()),
    )
    assert res.verdict == "fail" and res.score == 50.0
    assert res.artifact_key == record_key("deploy-shop-prod-v2", "run-1", 1, 0)
    assert res.artifact_key == "analysis/deploy-shop-prod-v2/run-1/step01-interval000.json"
    rec = load_record(store.get(res.artifact_key))
    assert rec["judge_version"] == rust_core.judge_version()
    assert (
        rec["series"]["latency"]["canary"]["query"] == 'avg(latency{service="shop",version="v2"})'
    )
    assert rec["series"]["latency"]["baseline"]["values"] == slow_canary()[("latency", "v1")]
    assert rec["config"]["pass_threshold"] == 95.0 and rec["verdict"]["verdict"] == "fail"
    assert rec["window"] == {"start": 1000.0, "end": 1010.0}
    assert "latency" in " ".join(res.reasons) and "High" in " ".join(res.reasons)

    again = rejudge_record(rec)
    assert (again["old"], again["new"]) == ("fail", "fail")
    assert again["score_new"] == again["score_old"] == rec["judge"]["score"]
    assert [m[1] for m in again["metrics"]] == [m[2] for m in again["metrics"]]
    # thresholds as expected: 50 >= 40 -> marginal; 50 >= 45 pass -> pass
    assert rejudge_record(rec, marginal_threshold=40)["new"] == "marginal"
    assert rejudge_record(rec, pass_threshold=45, marginal_threshold=40)["new"] == "pass"


async def test_identical_versions_pass_and_nodata_everywhere_is_inconclusive(
    tmp_path: Path,
) -> None:
    store = LocalArtifactStore(tmp_path)
    data = slow_canary()
    data[("latency", "v2")] = list(data[("latency", "v1")])
    spec = deploy_spec(analysis())
    res = await analyse_interval(
        inp(spec),
        settings=None,
        platform=None,
        store=store,
        workflow_id="w",
        provider=FakeProvider(data),
    )
    assert res.verdict == "pass" and res.score == 100.0
    none = await analyse_interval(
        inp(spec, 1),
        settings=None,
        platform=None,
        store=store,
        workflow_id="w",
        provider=FakeProvider({}),
    )
    assert none.verdict == "inconclusive"


async def test_backend_error_is_stored_and_raised_with_the_query(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path)
    with pytest.raises(MetricsUnavailable) as exc:
        await analyse_interval(
            inp(deploy_spec(analysis())),
            settings=None,
            platform=None,
            store=store,
            workflow_id="w",
            provider=FakeProvider({}, down=True),
        )
    assert 'avg(latency{service="shop",version="v2"})' in str(exc.value)
    rec = load_record(store.get(record_key("w", "run-1", 1, 0)))
    assert rec["error"]["type"] == "MetricsUnavailable" and rec["error"]["query"]
    assert rejudge_record(rec)["new"] == "error"


class FakeSamples:
    async def fetch_samples(
        self, service: str, env: str, since: float, until: float
    ) -> dict[str, WindowSample]:
        return {
            "v1": WindowSample(count=100, errors=0, latencies_ms=[10.0] * 100),
            "v2": WindowSample(count=100, errors=3, latencies_ms=[10.0] * 100),
        }


async def test_thresholds_mode_is_stored_and_rejudged(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path)
    spec = deploy_spec(AnalysisSpec())  # backbone: no metrics -> thresholds
    res = await analyse_interval(
        inp(spec), settings=None, platform=FakeSamples(), store=store, workflow_id="t"
    )
    assert res.verdict == "fail"  # 3% errors vs 0%: more than max_error_rate_increase 1%
    rec = load_record(store.get(res.artifact_key or ""))
    assert rec["mode"] == "thresholds" and rec["windows"]["v2"]["errors"] == 3
    assert rejudge_record(rec)["new"] == "fail"
    assert rejudge_record(rec, thresholds={"max_error_rate_increase": 0.05})["new"] == "pass"


async def test_codectl_rejudge_prints_old_vs_new(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path / "artifacts")
    spec = deploy_spec(analysis())
    for n in range(2):
        await analyse_interval(
            inp(spec, n),
            settings=None,
            platform=None,
            store=store,
            workflow_id="deploy-shop-prod-v2",
            provider=FakeProvider(slow_canary()),
        )
    same = rejudge_cli(tmp_path, "deploy-shop-prod-v2", "--json")
    assert same.returncode == 0, same.stderr
    out = json.loads(same.stdout)
    assert [(r["old"], r["new"]) for r in out["intervals"]] == [("fail", "fail")] * 2
    assert out["steps"] == {"1": {"old": "fail", "new": "fail"}}
    changed = rejudge_cli(
        tmp_path, "deploy-shop-prod-v2", "--pass-threshold", "45", "--marginal-threshold", "40"
    )
    assert changed.returncode == 0, changed.stderr
    assert "CHANGED" in changed.stdout and "pass (50.0)" in changed.stdout
    missing = rejudge_cli(tmp_path, "deploy-nope")
    assert missing.returncode == 2 and "no stored analysis" in missing.stderr


def rejudge_cli(state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    code = (
        "import typer, workers.cli.analysis as c; app = typer.Typer(); app.command('rejudge')(c.rejudge); "
        "app.command('analyse')(c.analyse); app()"
    )
    return subprocess.run(
        [sys.executable, "-c", code, "rejudge", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "CODE_STATE_DIR": str(state), "COLUMNS": "200"},
        timeout=60,
    )
