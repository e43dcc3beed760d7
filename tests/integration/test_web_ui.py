"""The Web UI page of a finished deployment, rendered by headless Chromium,
shows the run and its search attributes (screenshot saved for people to look at)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.integration.stack import ROOT, LiveStack
from tests.integration.test_deploy_local import deploy, example
from tests.servers import require_server
from workflows.client import connect

pytestmark = pytest.mark.integration


async def test_web_ui_shows_run_with_search_attributes(
    live_stack: LiveStack, tmp_path: Path
) -> None:
    if not any(shutil.which(b) for b in ("chromium", "chromium-browser")):
        require_server("chromium", "apt-get install -y chromium (make setup-test)")
    client = await connect(live_stack.settings.temporal_address)
    svc = f"ui{uuid.uuid4().hex[:6]}"
    res = await deploy(client, live_stack, example("demo-v1.yaml", svc))
    assert res.outcome == "promoted"
    desc = await client.get_workflow_handle(res.workflow_id).describe()
    base = f"{live_stack.settings.temporal_ui_url}/namespaces/default/workflows/{res.workflow_id}/{desc.run_id}"
    out_dir = Path(os.environ.get("CODE_SCREENSHOT_DIR", ROOT / "screenshots"))
    out_dir.mkdir(exist_ok=True)
    shots = {
        "search-attributes": out_dir / "deployment-search-attributes.png",
        "history": out_dir / "deployment-history.png",
    }
    doms = {}
    for tab, png in shots.items():
        dom = tmp_path / f"{tab}.html"
        subprocess.run(
            [
                sys.executable,
                str(ROOT / "scripts" / "screenshot.py"),
                f"{base}/{tab}",
                str(png),
                "--dom",
                str(dom),
            ],
            check=True,
            timeout=180,
        )
        assert png.stat().st_size > 20_000  # a rendered page, not a blank one
        doms[tab] = dom.read_text()
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
