"""The Web UI shows a release as a tree: a release of three targets (dev on ``local``,
then prod on the real cluster agents ``eu-1`` and ``us-1``) runs on the real embedded
stack; headless Chromium opens the release's workflow page and its Relationships tab,
whose rendered DOM must name every child ``DeploymentWorkflow`` id (and the release as
their parent on a child's page). The screenshot is kept under the test's tmp dir and
copied to ``docs/img/release-tree.png`` for the docs."""

from __future__ import annotations

import re
import shutil
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.integration.stack import EXAMPLES, ROOT, LiveStack
from tests.integration.test_release_live import run_release
from tests.integration.test_web_ui import need_chromium, shoot
from workers.clusters import ensure_clusters
from workflows.client import connect
from workflows.pipeline_spec import PipelineSpec

pytestmark = pytest.mark.integration
CLUSTERS = ["eu-1", "us-1"]
DOC_IMAGE = ROOT / "docs" / "img" / "release-tree.png"


def tree_pipeline(service: str) -> PipelineSpec:
    """dev (local) → prod (eu-1 + us-1 in one wave), rolling, no gates: three children."""
    doc: dict[str, Any] = {
        "service": service,
        "deployment": {
            "artifact": {
                "command": ["{python}", "demo_service.py"],
                "workdir": str(EXAMPLES),
                "env": {"DEMO_ERROR_RATE": "0", "DEMO_LATENCY_MS": "5"},
            },
            "health_check": {"path": "/healthz", "timeout": "20s"},
            "strategy": {"type": "rolling"},
        },
        "stages": [
            {"name": "dev", "targets": [{"environment": "dev", "cluster": "local"}]},
            {
                "name": "prod",
                "targets": [{"environment": "prod", "cluster": c} for c in CLUSTERS],
            },
        ],
    }
    return PipelineSpec.model_validate(doc)


def text_of(dom: str) -> str:
    """The rendered page's visible words (tags dropped), for id checks."""
    return " ".join(re.sub(r"<[^>]*>", " ", dom).split())


async def test_release_children_shown_as_a_tree(live_stack: LiveStack, tmp_path: Path) -> None:
    need_chromium()
    ensure_clusters(live_stack.stack, CLUSTERS)
    svc = f"tree{uuid.uuid4().hex[:6]}"
    res = await run_release(live_stack, tree_pipeline(svc), "t1")
    assert res.outcome == "promoted", res.reason
    children = sorted(c.workflow_id for c in res.cells if c.workflow_id)
    assert children == sorted(
        [f"deploy-{svc}-dev-t1", f"deploy-{svc}-prod-eu-1-t1", f"deploy-{svc}-prod-us-1-t1"]
    ), children

    client = await connect(live_stack.settings.temporal_address)
    rid = res.release_id
    desc = await client.get_workflow_handle(rid).describe()
    for wid in children:  # the server's own record: each child's parent is the release
        child = await client.get_workflow_handle(wid).describe()
        assert child.parent_id == rid, (wid, child.parent_id)

    ui = f"{live_stack.settings.temporal_ui_url}/namespaces/default/workflows"
    base = f"{ui}/{rid}/{desc.run_id}"
    png = tmp_path / "release-tree.png"
    tree = text_of(shoot(f"{base}/relationships", png, tmp_path / "relationships.html"))
    # the tab counts three, the tree's root is the release with Child Count 3, and each
    # child is a row "DeploymentWorkflow <id>"
    assert "Relationships 3" in tree, tree[:3000]
    assert f"Type ReleaseWorkflow ID {rid} Child Count 3" in tree, tree[:3000]
    missing = [wid for wid in children if f"DeploymentWorkflow {wid}" not in tree]
    assert not missing, (missing, tree[:3000])

    history = text_of(shoot(f"{base}/history", tmp_path / "history.png", tmp_path / "h.html"))
    assert history.count("Child Workflow Execution Started") == 3, history[:3000]

    first = await client.get_workflow_handle(children[0]).describe()
    child_page = text_of(
        shoot(
            f"{ui}/{children[0]}/{first.run_id}/relationships",
            tmp_path / "child.png",
            tmp_path / "child.html",
        )
    )
    # a child's own Relationships tab shows the same tree from its parent down
    assert "Relationships 1" in child_page, child_page[:3000]
    assert f"Type ReleaseWorkflow ID {rid} Child Count 3" in child_page, child_page[:3000]

    DOC_IMAGE.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(png, DOC_IMAGE)
