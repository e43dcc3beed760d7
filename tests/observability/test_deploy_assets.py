"""deploy/: manifests pass rust_core's policy check, the PrometheusRules in the
manifests are the shipped rule files, generated SLO rules are current and pass
`promtool check rules`, the Grafana dashboard only charts metrics that exist."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from tests.servers import require_server
from workers.cli.slo import slo_app

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
LABELS = ["app.kubernetes.io/name", "app.kubernetes.io/part-of"]


def test_manifests_pass_rust_core_policy() -> None:
    import rust_core

    files = sorted(p for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")
    kust = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert sorted(kust["resources"]) == sorted(p.name for p in files)
    kinds = set()
    for path in files:
        text = path.read_text()
        problems = rust_core.validate_manifests(text, required_labels=LABELS)
        assert not problems, (
            path.name,
            [(v.rule_id, v.kind, v.name, v.path, v.message) for v in problems],
        )
        kinds |= {d["kind"] for d in yaml.safe_load_all(text) if d}
    assert {
        "Deployment",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "ServiceMonitor",
        "NetworkPolicy",
        "PrometheusRule",
    } <= kinds
    # and the policy check does bite: an unpinned, unprobed copy fails
    bad = (
        (K8S / "worker.yaml")
        .read_text()
        .replace("code:0.1.0", "code:latest")
        .replace("readinessProbe", "xProbe")
    )
    rules = {v.rule_id for v in rust_core.validate_manifests(bad, required_labels=LABELS)}
    assert {"CODE001", "CODE004"} <= rules


def test_prometheus_rules_in_manifests_match_rule_files() -> None:
    docs = [d for d in yaml.safe_load_all((K8S / "monitoring.yaml").read_text()) if d]
    rules = {d["metadata"]["name"]: d["spec"] for d in docs if d["kind"] == "PrometheusRule"}
    assert rules["code-engine"] == yaml.safe_load(
        (ROOT / "deploy/prometheus/code-engine-rules.yaml").read_text()
    )
    assert rules["code-slo"] == yaml.safe_load(
        (ROOT / "deploy/prometheus/slo-rules.yaml").read_text()
    )


def test_slo_rules_generated_current_and_promtool_clean(tmp_path: Path) -> None:
    out = tmp_path / "slo-rules.yaml"
    r = CliRunner().invoke(
        slo_app, ["rules", str(ROOT / "deploy/slo/demo-availability.yaml"), "-o", str(out)]
    )
    assert r.exit_code == 0, r.output
    assert out.read_text() == (ROOT / "deploy/prometheus/slo-rules.yaml").read_text(), (
        "regenerate deploy/prometheus"
    )
    data = yaml.safe_load(out.read_text())
    alerts = [
        rule
        for g in data["groups"]
        for rule in g["rules"]
        if rule.get("alert") == "SLOErrorBudgetBurn"
        and rule["labels"]["slo"] == "demo-availability"
    ]
    windows = {
        (a["labels"]["long_window"], a["labels"]["short_window"], a["labels"]["severity"])
        for a in alerts
    }
    assert windows == {
        ("1h", "5m", "page"),
        ("6h", "30m", "page"),
        ("1d", "2h", "ticket"),
        ("3d", "6h", "ticket"),
    }
    page = next(a for a in alerts if a["labels"]["long_window"] == "1h")
    assert "> 0.144" in page["expr"]  # 14.4 x (1 - 0.99)
    promtool = shutil.which("promtool")
    if promtool is None:
        require_server("promtool", "apt-get install -y prometheus")
    for path in (out, ROOT / "deploy/prometheus/code-engine-rules.yaml"):
        res = subprocess.run(
            [promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60
        )
        assert res.returncode == 0, res.stdout + res.stderr
        assert "SUCCESS" in res.stdout


def test_invalid_slo_is_refused_naming_fields(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apiVersion: openslo/v1\nkind: SLO\nmetadata: {name: Bad_Name}\nspec:\n  service: x\n"
        "  timeWindow: [{duration: 30d}]\n  budgetingMethod: Timeslices\n  objectives: [{target: 1.5}]\n"
    )
    r = CliRunner().invoke(slo_app, ["rules", str(bad)])
    assert r.exit_code == 2
    for field in (
        "metadata.name",
        "spec.indicator",
        "spec.budgetingMethod",
        "spec.objectives.0.target",
    ):
        assert field in r.output, r.output


def test_dashboard_charts_existing_metrics() -> None:
    from activities.observability import METRICS

    dash = json.loads((ROOT / "deploy/grafana/code-dashboard.json").read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    known = {
        m._name for m in vars(METRICS).values()
    }  # prometheus-client strips _total from counters
    used = {
        re.sub(r"_(total|bucket|count|sum)$", "", m)
        for e in exprs
        for m in re.findall(r"\bcode_[a-z_]+", e)
    }
    assert used and used <= known, used - known
    titles = " ".join(p["title"].lower() for p in dash["panels"])
    for word in ("deployments", "rollbacks", "error budget", "soak", "chaos"):
        assert word in titles


@pytest.mark.parametrize("needle", ["shell" + "=True"])
def test_no_shell_true_anywhere(needle: str) -> None:
    skip = {".venv", "target", "node_modules", ".git", "__pycache__"}
    hits = []
    for path in ROOT.rglob("*.py"):
        if skip & set(path.relative_to(ROOT).parts):
            continue
        for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if re.search(r"shell\s*=\s*True", line):
                hits.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert not hits, hits
    assert needle  # the pattern is built so this file does not match itself
