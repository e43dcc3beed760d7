"""Readiness certificates on the real embedded stack (Temporal dev server, agent, demo
processes, worker process): three deployments (one rolled back by analysis), a chaos run
killing a stable instance, and a suite soak; then

* the certificate's figures equal what this test recomputes from the ledger's rows, the
  chaos journal and the soak's own result;
* every evidence link resolves (the workflow exists, the artifact reads back with its
  checksum, the audit row exists, the file has its SHA-256);
* a category with no evidence is "not measured"; a suite whose soak fails fails the
  certificate with that reason;
* the HTML renders in headless Chromium (screenshot + DOM check);
* ``codectl certify schedule`` creates a weekly Temporal Schedule of ReadinessWorkflow."""

from __future__ import annotations

import asyncio
import hashlib
import http.server
import json
import shutil
import subprocess
import sys
import threading
import uuid
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from activities.artifacts import store_from_settings
from activities.ledger import Ledger
from chaos.messages import ChaosResult
from chaos.model import parse_experiment
from loadtest.scenario import parse_scenario
from loadtest.soak_models import SoakPlan, SoakResult
from tests.integration.stack import ROOT, LiveStack
from tests.integration.test_deploy_local import Client, deploy, endpoint, example
from tests.servers import free_port, require_server
from workers.cli.certify import run_certification, write_outputs
from workers.cli.chaos_runs import start_run
from workflows.client import connect
from workflows.readiness_models import Certificate, ReadinessInput, Rules, Suite

pytestmark = pytest.mark.integration


def soak_plan(svc: str, url: str, **checks: Any) -> SoakPlan:
    return SoakPlan.model_validate(
        {
            "name": "rdy",
            "target": {"service": svc, "environment": "dev"},
            "scenario": parse_scenario(
                {"base_url": url, "targets": [{"name": "work", "path": "/work"}]}
            ),
            "rate": 20,
            "duration": "20s",
            "slice": "5s",
            "baseline": "5s",
            # no drift check: ms-level p99s of a 20 s soak on a busy machine are noise
            "checks": {"resources": None, "p99_drift": None, **checks},
        }
    )


def experiment(svc: str, url: str) -> Any:
    return parse_experiment(
        {
            "title": f"kill-stable {svc}",
            "steady_state": {
                "title": "answers 200",
                "probes": [
                    {
                        "name": "work",
                        "url": f"{url}/work",
                        "timeout": "2s",
                        "tolerance": {"type": "status", "status": 200},
                    }
                ],
            },
            "method": [
                {
                    "action": {
                        "name": "kill-stable",
                        "fault": "kill_instance",
                        "target": {
                            "service": svc,
                            "environment": "dev",
                            "version": "v2",
                            "mode": "one",
                        },
                        "pauses": {"after": "1s"},
                    }
                }
            ],
            "rollbacks": [
                {
                    "name": "restore",
                    "action": "restore",
                    "target": {"service": svc, "environment": "dev", "version": "v2"},
                }
            ],
            "controls": {"duration": "8s", "probe_interval": "2s", "rollback_attempts": 5},
        },
        environ={},
    )


async def check_links(client: Any, settings: Any, cert: Certificate) -> int:
    """Resolve every evidence link of the certificate; return how many were checked."""
    store = store_from_settings(settings)
    ledger = Ledger(settings.effective_ledger_url())
    seqs = {r.seq for r in ledger.audit_records()}
    ledger.close()
    n = 0
    for c in cert.categories:
        for f in c.figures:
            for e in f.evidence:
                n += 1
                if e.kind == "workflow":
                    await client.get_workflow_handle(e.ref).describe()
                    assert e.url and e.url.endswith(f"/workflows/{e.ref}")
                elif e.kind == "artifact":
                    data = store.get(e.ref, e.version_id)  # verifies the recorded sha256
                    if e.sha256:
                        assert hashlib.sha256(data).hexdigest() == e.sha256
                elif e.kind == "ledger" and ".." not in e.ref:
                    assert int(e.ref.removeprefix("audit:")) in seqs, e.ref
                elif e.kind == "file":
                    assert hashlib.sha256(Path(e.ref).read_bytes()).hexdigest() == e.sha256
    return n


def serve(directory: Path) -> tuple[http.server.ThreadingHTTPServer, int]:
    port = free_port()
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(directory))
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, port


async def test_certificate_from_real_evidence(live_stack: LiveStack, tmp_path: Path) -> None:
    s = live_stack.settings
    client = await connect(s.temporal_address)
    svc = f"rd{uuid.uuid4().hex[:6]}"
    assert (await deploy(client, live_stack, example("demo-v1.yaml", svc))).outcome == "promoted"
    url = await endpoint(live_stack, svc)
    traffic = Client(url)
    task = asyncio.create_task(traffic.run())
    try:
        assert (
            await deploy(client, live_stack, example("demo-v2.yaml", svc))
        ).outcome == "promoted"
        bad = await deploy(client, live_stack, example("demo-v3-bad.yaml", svc))
        assert bad.outcome == "rolled_back", bad.reason
        h = await start_run(client, experiment(svc, url), s.task_queue, "it")
        chaos = await client.get_workflow_handle(h.id, result_type=ChaosResult).result()
    finally:
        traffic.stop.set()
        await task
    crash = ROOT / "artifacts" / "crash-matrix.md"
    suite = Suite(
        soak=soak_plan(svc, url),
        rules=Rules(required={"delivery": 0.5, "soak": 1.0}, targets=["p99 < 5000ms at 15 rps"]),
    )
    inp = ReadinessInput(
        service=svc,
        environment="dev",
        window="1d",
        suite=suite,
        crash_matrix=str(crash) if crash.is_file() else None,
    )
    res = await run_certification(client, s, inp)
    cert = res.certificate

    # ---- recomputed independently: the ledger's release rows (not its audit records)
    ledger = Ledger(s.effective_ledger_url())
    rows = ledger.history(svc, "dev", limit=100)
    ledger.close()
    deploys = [r for r in rows if r.workflow_id.startswith("deploy-")]
    rolled = {r.version for r in rows if r.status == "rolled_back"}
    assert len(deploys) == 3 and rolled == {"v3"}
    assert cert.figure("delivery.deployments").value == 3  # type: ignore[union-attr]
    assert cert.figure("delivery.change_failure_rate").value == pytest.approx(1 / 3)  # type: ignore[union-attr]
    assert cert.figure("delivery.deploy_frequency").value == pytest.approx(3.0)  # type: ignore[union-attr]
    leads = sorted(
        (r.updated_at - r.created_at).total_seconds() for r in deploys if r.status == "promoted"
    )
    lead = cert.figure("delivery.lead_time_median").value  # type: ignore[union-attr]
    assert lead == pytest.approx(sum(leads) / 2, abs=0.05)
    # recovery: the rollback workflow's start (Temporal) -> its promoted row (ledger)
    rb_id = f"rollback-{svc}-dev-from-v3"
    rb_start = (await client.get_workflow_handle(rb_id).describe()).start_time
    restored = next(r for r in rows if r.workflow_id == rb_id and r.status == "promoted")
    took = (restored.updated_at.replace(tzinfo=rb_start.tzinfo) - rb_start).total_seconds()
    assert cert.figure("recovery.rollback_time_median").value == pytest.approx(took, abs=0.05)  # type: ignore[union-attr]
    # reliability: the chaos journal as stored
    passed = chaos.status == "completed" and not chaos.deviated
    assert cert.category("reliability").score == (1.0 if passed else 0.0)
    assert cert.figure("reliability.rollbacks_after_faults").value == 1.0  # type: ignore[union-attr]
    # soak: the suite soak's own result
    soak_id = f"{res.workflow_id}-soak"
    soak = await client.get_workflow_handle(soak_id, result_type=SoakResult).result()
    assert cert.suite[0].workflow_id == soak_id
    assert cert.suite[0].outcome == soak.verdict == "pass", cert.suite[0].reason
    assert cert.category("soak").score == 1.0
    p99 = soak.stats.histogram().quantile(0.99)
    assert cert.figure("performance.p99_ms").value == pytest.approx(p99)  # type: ignore[union-attr]
    assert cert.category("performance").score == 1.0
    # security: chain intact, histories scanned, nothing found; encryption off on this stack
    assert cert.figure("security.audit_chain_intact").value == 1.0  # type: ignore[union-attr]
    assert cert.figure("security.secrets_found").value == 0  # type: ignore[union-attr]
    assert cert.figure("security.payload_encryption").value == 0.0  # type: ignore[union-attr]
    # no SLO files: not measured, never a number
    assert cert.category("observability").score is None
    assert cert.verdict == "pass", cert.reasons

    # ---- every evidence link resolves
    assert await check_links(client, s, cert) > 20

    # ---- outputs: read back verified, HTML rendered in headless Chromium
    out = tmp_path / "cert"
    write_outputs(s, res, out)
    assert Certificate.model_validate_json((out / "certificate.json").read_text()) == cert
    if not (shutil.which("chromium") or shutil.which("chromium-browser")):
        require_server("chromium", "apt-get install -y chromium (make setup-test)")
    srv, port = serve(out)
    shots = Path(ROOT / "screenshots")
    shots.mkdir(exist_ok=True)
    dom = tmp_path / "dom.html"
    try:
        subprocess.run(
            [
                sys.executable,
                str(ROOT / "scripts" / "screenshot.py"),
                f"http://127.0.0.1:{port}/certificate.html",
                str(shots / "readiness-certificate.png"),
                "--dom",
                str(dom),
            ],
            check=True,
            timeout=180,
        )
    finally:
        srv.shutdown()
    text = dom.read_text()
    assert 'data-verdict="pass"' in text
    assert text.count("data-category=") == 7 and text.count("<svg") == 4
    assert "not measured" in text and (shots / "readiness-certificate.png").stat().st_size > 5000

    # ---- a suite whose soak fails fails the certificate with that reason
    failing = Suite(
        soak=soak_plan(
            svc,
            url,
            slo={
                "objective": 0.999,
                "latency_ms": 0.001,
                "windows": [{"long": "10s", "short": "5s", "factor": 2}],
            },
        )
    )
    res2 = await run_certification(
        client, s, ReadinessInput(service=svc, environment="dev", window="1d", suite=failing)
    )
    assert res2.verdict == "fail"
    assert res2.reasons[0].startswith(f"suite soak {res2.workflow_id}-soak ended fail: ")
    assert res2.certificate.previous_workflow_id == res.workflow_id
    assert any(line.startswith("Soak: 1.00 → 0.50") for line in res2.certificate.diff)

    # ---- a weekly schedule through the CLI
    cli = live_stack.cli(
        "certify", "schedule", svc, "--env", "dev", "--cron", "0 6 * * 1", "--window", "7d"
    )
    assert cli.returncode == 0, cli.stdout + cli.stderr
    desc = await client.get_schedule_handle(f"readiness-{svc}-dev").describe()
    assert desc.schedule.action.workflow == "ReadinessWorkflow"  # type: ignore[attr-defined]
    assert desc.schedule.spec.cron_expressions or desc.schedule.spec.calendars


async def test_secret_value_in_a_history_is_found_by_name(
    live_stack: LiveStack, tmp_path: Path
) -> None:
    """v1 takes a secret by reference (never in history); v2 leaks the same value as a plain
    env var: the scan names v2's workflow and the secret, never the value."""
    s = live_stack.settings
    client = await connect(s.temporal_address)
    svc = f"rs{uuid.uuid4().hex[:6]}"
    value = uuid.uuid4().hex
    (tmp_path / "token").write_text(value + "\n")
    v1 = example("demo-v1.yaml", svc)
    v1 = v1.model_copy(
        update={
            "artifact": v1.artifact.model_copy(
                update={"secrets": {"API_TOKEN": f"file:{tmp_path / 'token'}"}}
            )
        }
    )
    assert (await deploy(client, live_stack, v1)).outcome == "promoted"
    v2 = example("demo-v2.yaml", svc)
    leaked = {**v2.artifact.env, "DEBUG_TOKEN": value}
    v2 = v2.model_copy(update={"artifact": v2.artifact.model_copy(update={"env": leaked})})
    traffic = Client(await endpoint(live_stack, svc))
    task = asyncio.create_task(traffic.run())
    try:
        assert (await deploy(client, live_stack, v2)).outcome == "promoted"
    finally:
        traffic.stop.set()
        await task
    res = await run_certification(
        client, s, ReadinessInput(service=svc, environment="dev", window="1d", crash_matrix=None)
    )
    sec = res.certificate.figure("security.secrets_found")
    assert sec is not None and sec.value == 1, sec
    assert f"deploy-{svc}-dev-v2: v1:API_TOKEN" in sec.detail
    assert f"deploy-{svc}-dev-v1" not in sec.detail.split("histories")[-1]
    assert res.verdict == "fail"
    assert any(r.startswith("security.secrets_found = 1") for r in res.reasons)
    store = store_from_settings(s)
    for a in res.artifacts:
        assert value not in store.get(a.key, a.version_id).decode()
    assert value not in res.certificate.model_dump_json()
    # the same through codectl: exit 1 (fail), one JSON document, the three files written
    out = tmp_path / "cli-out"
    cli = live_stack.cli(
        "certify", svc, "--env", "dev", "--window", "1d", "--out", str(out), "--output", "json"
    )
    assert cli.returncode == 1, cli.stdout + cli.stderr
    doc = json.loads(cli.stdout)
    assert doc["schema"] == "code.certify/v1" and doc["certificate"]["verdict"] == "fail"
    assert doc["certificate"]["previous_workflow_id"] == res.workflow_id
    assert sorted(p.name for p in out.iterdir()) == [
        "certificate.html",
        "certificate.json",
        "certificate.md",
    ]
    assert value not in cli.stdout + cli.stderr
