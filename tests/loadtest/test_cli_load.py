"""``codectl load``: live view + final table, clear errors, loopback only."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from typer.testing import CliRunner

from tests.soak.conftest import fast_target  # noqa: F401 - fixture
from workers.cli.load import load

app = typer.Typer()
app.command("load")(load)


@app.command("noop")
def _noop() -> None:  # a second command keeps `load` a sub-command
    pass


def _scenario(tmp_path: Path, url: str) -> Path:
    p = tmp_path / "sc.yaml"
    p.write_text(
        f"name: t\nbase_url: {url}\ntargets:\n  - {{name: home, path: /, weight: 2}}\n"
        "  - {name: post, method: POST, path: /x, body: hello}\n"
    )
    return p


def test_load_table(tmp_path: Path, fast_target: str) -> None:  # noqa: F811
    res = CliRunner().invoke(
        app,
        ["load", str(_scenario(tmp_path, fast_target)), "--rate", "100", "--duration", "2s"],
        terminal_width=160,
    )
    assert res.exit_code == 0, res.output
    assert "home" in res.output and "post" in res.output
    assert "planned 200" in res.output and "dropped 0" in res.output


def test_load_json(tmp_path: Path, fast_target: str) -> None:  # noqa: F811
    res = CliRunner().invoke(
        app,
        [
            "load",
            str(_scenario(tmp_path, fast_target)),
            "--rate",
            "50",
            "--duration",
            "1s",
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["summary"]["completed"] == 50 and out["summary"]["errors"] == 0


def test_load_refuses_non_loopback(tmp_path: Path) -> None:
    res = CliRunner().invoke(
        app,
        [
            "load",
            str(_scenario(tmp_path, "http://127.0.0.1:1")),
            "--rate",
            "5",
            "--duration",
            "1s",
            "--target",
            "http://192.0.2.10:80",
        ],
    )
    assert res.exit_code == 2
    assert "loopback" in res.output and "192.0.2.10" in res.output


def test_load_bad_rate_and_scenario(tmp_path: Path) -> None:
    sc = _scenario(tmp_path, "http://127.0.0.1:1")
    res = CliRunner().invoke(app, ["load", str(sc), "--rate", "0", "--duration", "1s"])
    assert res.exit_code == 2 and "rate" in res.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("targets: [{name: a, method: FETCH}]\n")
    res = CliRunner().invoke(app, ["load", str(bad), "--rate", "1", "--duration", "1s"])
    assert res.exit_code == 2 and "targets.0.method" in res.output
