"""``codectl dev status --output json`` carries its versioned ``schema``
(``code.dev.status/v1``); ``lanes`` rows carry ``code.lane/v1`` (checked against a
live stack in ``tests/integration/test_examples.py``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from workers.cli import output
from workers.cli.root import app


def test_dev_status_json_has_its_schema(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CODE_STATE_DIR", str(tmp_path))
    r = CliRunner().invoke(app, ["dev", "status", "--output", "json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["schema"] == output.DEV_STATUS_SCHEMA == "code.dev.status/v1"
    assert doc["components"] == {} and doc["supervisor"]["alive"] is False


def test_new_schemas_are_documented() -> None:
    for schema in (output.DEV_STATUS_SCHEMA, output.LANE_SCHEMA):
        assert schema in output.SCHEMAS and f"``{schema}``" in (output.__doc__ or "")
