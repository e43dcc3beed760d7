"""``codectl artifacts list/versions/get`` and ``codectl chaos report`` against a real
local artifact store: ``get`` writes the plain file (never ``key.versions/000001``),
the report is Markdown + a self-contained HTML page + CODE's and the Chaos Toolkit
journal, and the JSON outputs carry their versioned schema."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from activities.artifacts import LocalArtifactStore
from chaos.blast import Target
from chaos.messages import Event, FaultRecord, Journal, ProbeRecord
from workers.cli.root import app

WID = "chaos-report-test"


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> LocalArtifactStore:
    monkeypatch.setenv("CODE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("CODE_ARTIFACT_DIR", str(tmp_path / "artifacts"))
    monkeypatch.setenv("CODE_ARTIFACT_STORE", "local")
    monkeypatch.chdir(tmp_path)
    return LocalArtifactStore(tmp_path / "artifacts")


def _journal() -> Journal:
    t0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    target = Target(platform="kubernetes", service="checkout", environment="staging", version="v1")

    def probe(phase: str, s: int, ok: bool) -> ProbeRecord:
        at = t0 + timedelta(seconds=s)
        return ProbeRecord(
            name="up",
            phase=phase,  # type: ignore[arg-type]
            ok=ok,
            detail="status 200" if ok else "status 503",
            started_at=at,
            finished_at=at + timedelta(milliseconds=12),
            status=200 if ok else 503,
            latency_ms=12.0,
            requests=1,
        )

    return Journal(
        workflow_id=WID,
        title="checkout <survives> a pod kill",
        actor="pytest",
        status="completed",
        phase="done",
        started_at=t0,
        finished_at=t0 + timedelta(seconds=10),
        probes=[probe("before", 0, True), probe("during", 3, False), probe("after", 9, True)],
        faults=[
            FaultRecord(
                action="kill",
                fault="delete_pod",
                target=target,
                key="k",
                injected_at=t0 + timedelta(seconds=1),
                reverted_at=t0 + timedelta(seconds=8),
            )
        ],
        events=[Event(at=t0 + timedelta(seconds=1), kind="inject", message="delete_pod")],
    )


def test_artifacts_list_versions_get(store: LocalArtifactStore, tmp_path: Path) -> None:
    store.put("soak/s1/report.md", b"# old\n", "text/markdown")
    store.put("soak/s1/report.md", b"# new\n", "text/markdown")
    runner = CliRunner()
    listed = runner.invoke(app, ["artifacts", "list", "soak/", "--output", "json"])
    assert listed.exit_code == 0, listed.output
    assert json.loads(listed.stdout) == {
        "schema": "code.artifacts.list/v1",
        "prefix": "soak/",
        "keys": ["soak/s1/report.md"],
    }
    versions = json.loads(
        runner.invoke(app, ["artifacts", "versions", "soak/s1/report.md", "-o", "json"]).stdout
    )
    assert versions["schema"] == "code.artifacts.versions/v1"
    assert [v["version_id"] for v in versions["versions"]] == ["1", "2"]
    got = runner.invoke(app, ["artifacts", "get", "soak/s1/report.md"])
    assert got.exit_code == 0, got.output
    assert (tmp_path / "report.md").read_bytes() == b"# new\n"  # the plain file, latest
    old = runner.invoke(
        app, ["artifacts", "get", "soak/s1/report.md", "--version", "1", "--out", "x/"]
    )
    assert old.exit_code == 0 and (tmp_path / "x" / "report.md").read_bytes() == b"# old\n"
    stdout = runner.invoke(app, ["artifacts", "get", "soak/s1/report.md", "--out", "-"])
    assert stdout.stdout == "# new\n"
    missing = runner.invoke(app, ["artifacts", "get", "soak/nope.md"])
    assert missing.exit_code == 1


def test_chaos_report_writes_markdown_html_and_both_journals(
    store: LocalArtifactStore, tmp_path: Path
) -> None:
    store.put(
        f"chaos/{WID}/journal.json", _journal().model_dump_json().encode(), "application/json"
    )
    out = tmp_path / "rep"
    r = CliRunner().invoke(app, ["chaos", "report", WID, "--out", str(out), "--output", "json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["schema"] == "code.chaos.report/v1" and doc["source"] == "store"
    md = (out / "report.md").read_text()
    assert "# Chaos experiment: checkout <survives> a pod kill" in md
    page = (out / "report.html").read_text()
    assert page.startswith("<!doctype html>") and page.count("<svg") == 2
    assert "checkout &lt;survives&gt;" in page and "NOT OK" in page
    assert "<script" not in page and "<link" not in page and " src=" not in page  # self-contained
    assert json.loads((out / "journal.json").read_text())["workflow_id"] == WID
    ctk = json.loads((out / "ctk" / "journal.json").read_text())
    assert ctk["status"] == "completed" and ctk["deviated"] is False
    assert ctk["steady_states"]["before"]["steady_state_met"] is True
    assert [p["status"] for p in ctk["steady_states"]["during"]] == ["failed"]
    assert ctk["run"][0]["activity"]["provider"]["func"] == "delete_pod"
    assert ctk["rollbacks"][0]["status"] == "succeeded"


def test_chaos_report_of_an_unknown_run_fails_cleanly(store: LocalArtifactStore) -> None:
    r = CliRunner().invoke(app, ["chaos", "report", "no-such-run", "--out", "x"])
    assert r.exit_code in (1, 3), r.output  # not stored; no Temporal server to ask
