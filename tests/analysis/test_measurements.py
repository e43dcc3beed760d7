"""Web and Job measurements (``analysis.measure``) against a real loopback HTTP receiver
and real subprocess jobs; the spec's and ``codectl validate``'s refusals; a ``dry_run``
judged metric that fails is recorded but leaves the verdict (and the rejudge) alone."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from activities.analysis import analyse_interval, load_record, rejudge_record
from activities.analysis.measure import MeasureActivities, measurement_problems
from activities.analysis.record import AnalysisRecord
from activities.artifacts import LocalArtifactStore
from activities.settings import Settings
from tests.analysis.test_provenance import FakeProvider, deploy_spec, inp, slow_canary
from tests.receiver import Call, Receiver
from workflows.measure_spec import MeasuredMetric, MeasureInput, MeasurementResult
from workflows.spec import AnalysisSpec

PY = sys.executable


def measured(**kw: Any) -> MeasuredMetric:
    return MeasuredMetric.model_validate(kw)


def web(url: str, path: str = "$.data.ratio", **success: Any) -> MeasuredMetric:
    return measured(
        name="ratio",
        provider={"web": {"url": url, "json_path": path, "timeout": "3s"}},
        success=success or {"max": 0.05},
    )


def job(argv: list[str], value: str = "exit_code", **kw: Any) -> MeasuredMetric:
    return measured(
        name="job", provider={"job": {"argv": argv, "value": value, "timeout": "5s"}}, **kw
    )


async def measure(*ms: MeasuredMetric, settings: Settings | None = None) -> list[Any]:
    acts = MeasureActivities(settings or Settings())
    inp = MeasureInput(
        measurements=list(ms),
        service="shop",
        environment="prod",
        version="v2",
        step_index=1,
        interval_index=0,
    )
    return [await acts.one(m, inp) for m in ms]


@pytest.fixture
def receiver() -> Any:
    answers: dict[str, tuple[int, str]] = {
        "/ok": (200, json.dumps({"data": {"ratio": 0.01}})),
        "/bad": (200, json.dumps({"data": {"ratio": 0.5}})),
        "/text": (200, "not json"),
        "/down": (503, "{}"),
        "/str": (200, json.dumps({"data": {"ratio": "0.02", "state": "green"}})),
    }

    def respond(c: Call) -> tuple[int, str]:
        if c.path == "/echo":
            return 200, json.dumps({"v": 1, "auth": c.headers.get("Authorization", "")})
        return answers.get(c.path, (404, "{}"))

    r = Receiver(respond)
    yield r
    r.stop()


async def test_web_value_at_json_path_against_its_bounds(receiver: Receiver) -> None:
    ok, bad = await measure(web(receiver.url + "/ok"), web(receiver.url + "/bad"))
    assert (ok.status, ok.value, ok.kind) == ("passed", 0.01, "web")
    assert (bad.status, bad.value) == ("failed", 0.5)
    assert "value 0.5 > max 0.05" in bad.message
    (num,) = await measure(web(receiver.url + "/str", min=0.0, max=0.05))
    assert num.status == "passed" and num.value == 0.02  # numeric strings count
    assert receiver.paths() == ["/ok", "/bad", "/str"]


async def test_web_errors_are_answers_not_exceptions(receiver: Receiver) -> None:
    missing, text, down, word = await measure(
        web(receiver.url + "/ok", path="$.data.nope"),
        web(receiver.url + "/text"),
        web(receiver.url + "/down"),
        web(receiver.url + "/str", path="$.data.state"),
    )
    assert missing.status == "error" and "$.data.nope not in the response" in missing.message
    assert text.status == "error" and "not JSON" in text.message
    assert down.status == "error" and "status 503" in down.message
    assert word.status == "error" and "not a number" in word.message
    (closed,) = await measure(web("http://127.0.0.1:1/x"))
    assert closed.status == "error" and "ConnectError" in closed.message


async def test_web_target_outside_allowed_targets_is_refused_without_a_call(
    receiver: Receiver,
) -> None:
    (r,) = await measure(web("http://10.20.30.40/metrics"))
    assert r.status == "error" and "not loopback" in r.message
    assert receiver.calls == []


async def test_secret_header_is_sent_and_masked(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MEASURE_TOKEN", "s3cret-value")
    m = measured(
        name="echo",
        provider={
            "web": {
                "url": receiver.url + "/echo",
                "json_path": "v",
                "secret_headers": {"Authorization": "Bearer env:MEASURE_TOKEN"},
            }
        },
        success={"equals": 1},
    )
    assert "s3cret" not in m.model_dump_json()  # the spec (and history) holds the reference
    (r,) = await measure(m)
    assert r.status == "passed"
    assert receiver.to("/echo")[0].headers["Authorization"] == "Bearer s3cret-value"
    assert "s3cret" not in r.excerpt and "********" in r.excerpt


async def test_job_exit_code_and_stdout_number() -> None:
    ok, bad = await measure(
        job([PY, "-c", "pass"]), job(["{python}", "-c", "import sys; sys.exit(3)"])
    )
    assert (ok.status, ok.value) == ("passed", 0.0)  # default: exit code 0 passes
    assert (bad.status, bad.value) == ("failed", 3.0) and "3 != 0" in bad.message
    code = "import os; print('version', os.environ['CODE_MEASURE_VERSION'], 'p99=123.5')"
    (p99,) = await measure(job([PY, "-c", code], value="stdout_number", success={"max": 200}))
    assert (p99.status, p99.value) == ("passed", 123.5)
    assert "version v2" in p99.excerpt  # the run's fields reach the job's env
    (none,) = await measure(job([PY, "-c", "print('hi')"], "stdout_number", success={"min": 1}))
    assert none.status == "error" and "no number" in none.message


async def test_job_runs_argv_without_a_shell_and_times_out(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    argv = ["echo", f"touch {marker}; echo 7"]
    (r,) = await measure(job(argv, "stdout_number", success={"min": 0}))
    assert r.status == "passed" and r.value == 7.0 and not marker.exists()  # no shell ran
    slow = measured(
        name="slow",
        provider={"job": {"argv": [PY, "-c", "import time; time.sleep(30)"], "timeout": "0.5s"}},
    )
    t0 = asyncio.get_running_loop().time()
    (r,) = await measure(slow)
    assert r.status == "error" and "timed out" in r.message
    assert asyncio.get_running_loop().time() - t0 < 5
    (missing,) = await measure(job(["/nonexistent/measure-tool"]))
    assert missing.status == "error" and "cannot run" in missing.message


# ---------------------------------------------------------------- spec and validate
def test_spec_refuses_bad_measurements() -> None:
    with pytest.raises(ValidationError, match="json_path"):
        measured(name="w", provider={"web": {"url": "http://127.0.0.1:1/"}}, success={"max": 1})
    with pytest.raises(ValidationError, match="give success"):
        measured(name="w", provider={"web": {"url": "http://127.0.0.1:1/", "json_path": "a"}})
    with pytest.raises(ValidationError, match="exactly one of provider"):
        measured(name="x", provider={})
    with pytest.raises(ValidationError, match="min exceeds"):
        job(["true"], success={"min": 2, "max": 1})
    with pytest.raises(ValidationError, match="every metric is dry_run"):
        AnalysisSpec.model_validate(
            {"metrics": [{"name": "l", "source": "latency_ms", "dry_run": True}]}
        )


def _spec_file(tmp_path: Path, url: str) -> Path:
    p = tmp_path / "spec.yaml"
    p.write_text(
        f"""service: shop
environment: dev
version: v2
artifact: {{command: ["{{python}}", "-c", "pass"]}}
strategy:
  type: canary
  canary:
    steps:
      - set_weight: 20
      - analysis:
          interval: 5s
          measurements:
            - name: upstream
              provider: {{web: {{url: "{url}", json_path: $.ratio}}}}
              success: {{max: 0.05}}
            - name: smoke
              provider: {{job: {{argv: [no-such-measure-tool]}}}}
"""
    )
    return p


def test_codectl_validate_names_a_refused_target(tmp_path: Path) -> None:
    from workers.cli.root import app

    r = CliRunner().invoke(app, ["validate", str(_spec_file(tmp_path, "http://10.9.8.7/m"))])
    assert r.exit_code == 2, r.output
    out = " ".join(r.output.split())
    assert "measurements.upstream.provider.web.url" in out and "not loopback" in out
    assert "measurements.smoke.provider.job.argv[0]" in out
    assert measurement_problems(deploy_spec(AnalysisSpec())) == []


# ---------------------------------------------------------------- dry-run judged metric
async def test_dry_run_judged_metric_is_recorded_but_not_decisive(tmp_path: Path) -> None:
    """The slow canary fails ``latency``; marked dry_run, the interval passes on ``errors``
    alone, the reasons and the stored series keep the dry-run verdict, rejudge agrees."""
    a = AnalysisSpec.model_validate(
        {
            "interval": "10s",
            "groups": {"latency": 50, "errors": 50},
            "metrics": [
                {"name": "latency", "query": "lat{version='{version}'}", "group": "latency",
                 "allowed_increase": 1.1, "dry_run": True},
                {"name": "errors", "query": "err{version='{version}'}", "group": "errors"},
            ],
        }
    )  # fmt: skip
    store = LocalArtifactStore(tmp_path)
    res = await analyse_interval(
        inp(deploy_spec(a)),
        settings=None,
        platform=None,
        store=store,
        workflow_id="deploy-shop-prod-v2",
        provider=FakeProvider(slow_canary()),
    )
    assert res.verdict == "pass" and res.score == 100.0, res.reasons
    assert any(r.startswith("dry-run latency [fail]") for r in res.reasons), res.reasons
    assert res.artifact_key is not None
    rec = AnalysisRecord.model_validate(load_record(store.get(res.artifact_key)))
    assert "latency" in (rec.series or {})  # the dry-run metric's data is kept
    again = rejudge_record(rec)
    assert again["new"] == again["old"] == "pass"
    live = a.model_copy(update={"metrics": [m.model_copy(update={"dry_run": False})
                                            for m in a.metrics]})  # fmt: skip
    res2 = await analyse_interval(
        inp(deploy_spec(live)),
        settings=None,
        platform=None,
        store=store,
        workflow_id="deploy-shop-prod-v2-live",
        provider=FakeProvider(slow_canary()),
    )
    assert res2.verdict == "fail"  # the same data without dry_run fails


def test_result_model_keeps_dry_run_flag() -> None:
    r = MeasurementResult(name="x", kind="job", dry_run=True, status="failed", value=1.0)
    assert MeasurementResult.model_validate_json(r.model_dump_json()).dry_run is True
