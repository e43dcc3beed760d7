"""The Web UI page of a finished deployment, rendered by headless Chromium,
shows the run and its search attributes (screenshot saved for people to look at);
the list of a service's runs shows the canary analysis rolled back as Failed (red)
and the promoted release as Completed, and the Failures filter lists the canary only."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.integration.stack import ROOT, LiveStack
from tests.integration.test_deploy_local import deploy, example
from tests.integration.test_not_promoted import rolled_back_canary
from tests.servers import require_server
from workflows.client import connect

pytestmark = pytest.mark.integration


def need_chromium() -> None:
    if not any(shutil.which(b) for b in ("chromium", "chromium-browser")):
        require_server("chromium", "apt-get install -y chromium (make setup-test)")


def shots_dir() -> Path:
    out_dir = Path(os.environ.get("CODE_SCREENSHOT_DIR", ROOT / "screenshots"))
    out_dir.mkdir(exist_ok=True)
    return out_dir


def shoot(url: str, png: Path, dom: Path) -> str:
    """Screenshot ``url`` to ``png``; the rendered DOM's text."""
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "screenshot.py"), url, str(png), "--dom", str(dom)],
        check=True,
        timeout=180,
    )
    assert png.stat().st_size > 20_000  # a rendered page, not a blank one
    return dom.read_text()


async def test_web_ui_shows_run_with_search_attributes(
    live_stack: LiveStack, tmp_path: Path
) -> None:
    need_chromium()
    client = await connect(live_stack.settings.temporal_address)
    svc = f"ui{uuid.uuid4().hex[:6]}"
    res = await deploy(client, live_stack, example("demo-v1.yaml", svc))
    assert res.outcome == "promoted"
    desc = await client.get_workflow_handle(res.workflow_id).describe()
    base = f"{live_stack.settings.temporal_ui_url}/namespaces/default/workflows/{res.workflow_id}/{desc.run_id}"
    out_dir = shots_dir()
    shots = {
        "search-attributes": out_dir / "deployment-search-attributes.png",
        "history": out_dir / "deployment-history.png",
    }
    doms = {
        tab: shoot(f"{base}/{tab}", png, tmp_path / f"{tab}.html") for tab, png in shots.items()
    }
    page = doms["search-attributes"]
    assert res.workflow_id in page
    for key, value in {
        "CodeService": svc,
        "CodeEnvironment": "dev",
        "CodeVersion": "v1",
        "CodeOutcome": "promoted",
        "CodeStrategy": "rolling",
    }.items():
        assert key in page and value in page, key
    assert "DeploymentWorkflow" in doms["history"]


async def test_web_ui_shows_rolled_back_canary_as_failed(
    live_stack: LiveStack, tmp_path: Path
) -> None:
    need_chromium()
    client = await connect(live_stack.settings.temporal_address)
    svc = f"uif{uuid.uuid4().hex[:6]}"
    bad = await rolled_back_canary(client, live_stack, svc)
    good = f"deploy-{svc}-dev-v1"
    ui = f"{live_stack.settings.temporal_ui_url}/namespaces/default/workflows"
    runs = shoot(
        f"{ui}?query={quote(f'CodeService={chr(34)}{svc}{chr(34)}')}",
        shots_dir() / "runs-rolled-back-canary-failed.png",
        tmp_path / "runs.html",
    )
    rows = status_of_rows(runs, [good, bad.workflow_id])
    assert rows == {good: "Completed", bad.workflow_id: "Failed"}, rows
    failures = shoot(
        f"{ui}?query={quote(f'CodeService={chr(34)}{svc}{chr(34)} AND ExecutionStatus={chr(34)}Failed{chr(34)}')}",
        shots_dir() / "runs-failures-filter.png",
        tmp_path / "failures.html",
    )
    assert status_of_rows(failures, [good, bad.workflow_id]) == {bad.workflow_id: "Failed"}


def status_of_rows(dom: str, workflow_ids: list[str]) -> dict[str, str]:
    """Each run's status as its row (``<tr>``) in the rendered list shows it."""
    statuses = ("Running", "Completed", "Failed", "Canceled", "Terminated", "TimedOut")
    out: dict[str, str] = {}
    for row in re.findall(r"<tr\b.*?</tr>", dom, re.S):
        words = re.sub(r"<[^>]*>", " ", row).split()
        for wid in workflow_ids:
            if wid in words:
                out[wid] = next((w for w in words if w in statuses), "?")
    return out
