"""``allowed_targets``: loopback only by default, a refusal names the setting, and an
allow-listed non-loopback target is accepted by validation and dry-run only (no
traffic is ever sent off loopback by these tests)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from activities.settings import Settings
from chaos.model import parse_experiment
from code_foundation import targets
from code_foundation.errors import SpecError
from loadtest.safety import NotLoopbackError, load_target_problem, require_allowed
from loadtest.scenario import parse_scenario
from workers.cli.root import app

REMOTE = "http://10.20.30.40:8080/healthz"
IN_CLUSTER = "https://checkout.staging.svc.cluster.local/healthz"


@pytest.fixture(autouse=True)
def _reset(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv(targets.ENV, raising=False)
    monkeypatch.delenv("CODE_CONFIG", raising=False)
    targets.configure(None)
    yield
    targets.configure(None)


def _probe_only(url: str) -> dict:
    probe = {"name": "up", "url": url, "tolerance": {"type": "status", "status": 200}}
    return {
        "title": "probe only",
        "steady_state": {"title": "up", "probes": [probe]},
        "method": [{"probe": probe}],
    }


def test_default_is_loopback_only_and_refusal_names_the_setting() -> None:
    assert Settings().allowed_targets == ["loopback"]
    assert targets.current_allowed() == ("loopback",)
    for url in (REMOTE, IN_CLUSTER):
        problem = load_target_problem(url)
        assert problem and "allowed_targets (CODE_ALLOWED_TARGETS)" in problem
        with pytest.raises(NotLoopbackError, match="CODE_ALLOWED_TARGETS"):
            require_allowed(url)
    with pytest.raises(SpecError, match="allowed_targets"):
        parse_experiment(_probe_only(REMOTE))
    with pytest.raises(SpecError, match="allowed_targets"):
        parse_scenario({"base_url": REMOTE, "targets": [{"name": "home"}]})
    assert load_target_problem("http://127.0.0.1:9/") is None
    assert load_target_problem("https://[::1]:9/") is None


def test_allow_listed_targets_validate(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(targets.ENV, "loopback, 10.0.0.0/8, *.svc.cluster.local")
    s = Settings()
    assert s.allowed_targets == ["loopback", "10.0.0.0/8", "*.svc.cluster.local"]
    s.apply_targets()
    for url in (REMOTE, IN_CLUSTER, "http://127.0.0.1:1/"):
        assert load_target_problem(url) is None
    parse_experiment(_probe_only(IN_CLUSTER))
    parse_scenario({"base_url": REMOTE, "targets": [{"name": "home"}]})
    # still refused: outside the CIDR, a suffix look-alike, a bare name
    for url in ("http://11.0.0.1/", "http://evil-svc.cluster.local.example/", "http://db/"):
        problem = load_target_problem(url)
        assert problem and "is not allowed by allowed_targets" in problem


def test_settings_file_and_bad_entries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "code.toml"
    cfg.write_text('allowed_targets = ["loopback", "*.svc.cluster.local"]\ntls_insecure = false\n')
    monkeypatch.setenv("CODE_CONFIG", str(cfg))
    assert Settings().allowed_targets == ["loopback", "*.svc.cluster.local"]
    monkeypatch.setenv(targets.ENV, '["192.168.0.0/16"]')  # the environment wins
    assert Settings().allowed_targets == ["192.168.0.0/16"]
    with pytest.raises(ValueError, match="allowed_targets"):
        Settings(allowed_targets=["not a host"])
    with pytest.raises(ValueError, match="not a CIDR"):
        targets.configure(["10.0.0.0/33"])


def test_cli_dry_run_refused_then_accepted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    exp = tmp_path / "exp.json"
    exp.write_text(json.dumps(_probe_only(IN_CLUSTER)))
    runner = CliRunner()
    refused = runner.invoke(app, ["chaos", "run", str(exp), "--dry-run"])
    assert refused.exit_code == 2, refused.output
    assert "CODE_ALLOWED_TARGETS" in refused.output
    monkeypatch.setenv(targets.ENV, "loopback,*.svc.cluster.local")
    # a dry-run of a probe-only experiment asks no platform and sends no request
    accepted = runner.invoke(app, ["chaos", "run", str(exp), "--dry-run"])
    assert accepted.exit_code == 0, accepted.output
