"""Observability evidence against a real Prometheus: the SLO file's generated rule groups
(``codectl slo rules``) loaded in Prometheus are found by ``readiness.observability``; with
half of them missing the figure says so; the error budget comes from the real
``slo.error_budget`` activity over Prometheus; no SLO file: "not measured"."""

from __future__ import annotations

import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from activities.readiness import ReadinessActivities
from activities.settings import Settings
from activities.slo import SloActivities
from tests.servers import free_port, require_server, stop_process, wait_until
from workflows.readiness_formulas import certify
from workflows.readiness_models import EvidenceBundle, GatherInput, Rules
from workflows.slo import BudgetInput, parse_slos, rules_yaml

ROOT = Path(__file__).resolve().parents[2]
SLO_FILE = ROOT / "deploy" / "slo" / "demo-availability.yaml"


def start_prometheus(
    tmp: Path, rules: Path, scrape: str | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    prom = shutil.which("prometheus")
    if prom is None:
        require_server("prometheus", "binary not found (apt-get install -y prometheus)")
    port = free_port()
    jobs = (
        f"scrape_configs: [{{job_name: t, static_configs: [{{targets: [{scrape!r}]}}]}}]\n"
        if scrape
        else ""
    )
    (tmp / "prometheus.yml").write_text(
        f"global: {{scrape_interval: 1s, evaluation_interval: 1s}}\nrule_files: [{str(rules)!r}]\n"
        + jobs
    )
    proc = subprocess.Popen(
        [
            str(prom),
            f"--config.file={tmp / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=(tmp / "prometheus.log").open("wb"),
    )
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        try:
            return httpx.get(url + "/-/ready", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(ready, 30, "prometheus ready", proc)
    return proc, url


def gather(service: str, slo_files: list[str]) -> GatherInput:
    now = datetime.now(UTC)
    return GatherInput(
        service=service,
        environment="dev",
        window_start=now - timedelta(days=30),
        window_end=now,
        rules=Rules(slo_files=slo_files),
    )


async def test_rules_loaded_in_prometheus_and_budget(tmp_path: Path) -> None:
    slos = parse_slos(SLO_FILE.read_text(), str(SLO_FILE))
    full = tmp_path / "slo-rules.yaml"
    full.write_text(rules_yaml(slos))
    proc, url = start_prometheus(tmp_path, full)
    try:
        settings = Settings(state_dir=tmp_path, prometheus_url=url)
        acts = ReadinessActivities(settings)
        part = await acts.observability(gather("demo", [str(SLO_FILE)]))
        (slo,) = part.observability.slos
        assert slo.name == "demo-availability" and slo.objective == 0.99
        assert slo.rules_expected and slo.rules_loaded == slo.rules_expected
        res = await SloActivities(settings).error_budget(
            BudgetInput(
                service="demo",
                environment="dev",
                slo=slo.name,
                objective=slo.objective,
                window_seconds=slo.window_seconds,
                good_query=slo.good_query,
                total_query=slo.total_query,
            )
        )
        slo.budget_remaining, slo.budget_source = res.remaining, res.source
        assert res.source == "prometheus"
        cert = certify(part, Rules(), generated_at=datetime.now(UTC))
        obs = cert.category("observability")
        assert cert.figure("observability.burn_rules_loaded").value == 1.0  # type: ignore[union-attr]
        assert cert.figure("observability.budget_remaining_min").value == res.remaining  # type: ignore[union-attr]
        assert obs.score == (1.0 if res.remaining > 0 else 0.0)
        # another service has no SLO in the file: not measured
        other = await acts.observability(gather("nobody", [str(SLO_FILE)]))
        assert (
            certify(other, Rules(), generated_at=datetime.now(UTC)).category("observability").score
            is None
        )
    finally:
        stop_process(proc)


async def test_missing_rule_groups_are_reported(tmp_path: Path) -> None:
    slos = parse_slos(SLO_FILE.read_text(), str(SLO_FILE))
    import yaml

    doc = yaml.safe_load(rules_yaml(slos))
    doc["groups"] = [g for g in doc["groups"] if g["name"].endswith("-recording")]
    half = tmp_path / "half.yaml"
    half.write_text(yaml.safe_dump(doc))
    proc, url = start_prometheus(tmp_path, half)
    try:
        acts = ReadinessActivities(Settings(state_dir=tmp_path, prometheus_url=url))
        part: EvidenceBundle = await acts.observability(gather("demo", [str(SLO_FILE)]))
        (slo,) = part.observability.slos
        assert 0 < len(slo.rules_loaded) < len(slo.rules_expected)
        assert all("-recording/" in r for r in slo.rules_loaded)
        slo.budget_remaining = 1.0
        cert = certify(part, Rules(), generated_at=datetime.now(UTC))
        assert cert.category("observability").score == 0.0  # alerts not loaded
        loaded = cert.figure("observability.burn_rules_loaded")
        assert loaded is not None and loaded.value is not None and loaded.value < 1
    finally:
        stop_process(proc)
