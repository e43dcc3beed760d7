"""``--output json`` of the state-reading commands that need no Temporal server
(``history``, ``audit verify``): one JSON document whose ``schema`` is documented in
:mod:`workers.cli.output`; a bad ``--output`` exits 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from activities.ledger import Ledger
from workers.cli import output
from workers.cli.root import app
from workflows.models import LedgerRecordInput


@pytest.fixture
def ledger(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Ledger:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    monkeypatch.setenv("CODE_LEDGER_URL", url)
    monkeypatch.setenv("CODE_STATE_DIR", str(tmp_path))
    return Ledger(url)


def test_history_and_audit_json(ledger: Ledger) -> None:
    ledger.record(
        LedgerRecordInput(
            service="checkout",
            environment="dev",
            version="v2",
            status="promoted",
            actor="pytest",
            workflow_id="deploy-checkout-dev-v2",
            strategy="canary",
            idempotency_key="k1",
        )
    )
    runner = CliRunner()
    r = runner.invoke(app, ["history", "checkout", "--output", "json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["schema"] == "code.history/v1" and doc["service"] == "checkout"
    [rel] = doc["releases"]
    assert rel["version"] == "v2" and rel["workflow_id"] == "deploy-checkout-dev-v2"
    assert {"when", "environment", "status", "actor", "strategy"} <= set(rel)
    a = runner.invoke(app, ["audit", "verify", "-o", "json"])
    assert a.exit_code == 0, a.output
    audit = json.loads(a.stdout)
    assert audit["schema"] == "code.audit.verify/v1" and audit["ok"] is True
    assert audit["broken_seq"] is None and audit["records"] >= 0


def test_bad_output_exits_2_and_every_schema_is_documented(ledger: Ledger) -> None:
    r = CliRunner().invoke(app, ["history", "checkout", "--output", "yaml"])
    assert r.exit_code == 2
    for schema in output.SCHEMAS:
        assert f"``{schema}``" in (output.__doc__ or ""), schema
