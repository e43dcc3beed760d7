# mypy: disable-error-code="union-attr,index"
"""Kubernetes targets by kube context: three kmock API servers (real HTTP on loopback,
each with its own stand-in Deployment controller), one kubeconfig with a context per
server (current context: the spare one), and a release on the real dev server whose
prod targets name ``eu-1`` (by cluster) and ``us-east`` (by ``kube_context``). Each
server gets exactly its own target's objects (told apart by the target's env and
replicas), the spare server none. A pipeline naming a context the kubeconfig lacks is
refused by ``codectl release`` with exit 2 naming it, and no release is started."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from activities.platform.clusters import kube_contexts, kube_settings
from activities.settings import Settings
from code_foundation.errors import ConfigError
from tests.platform.test_kubernetes import FakeDeploymentController
from tests.servers import KubeServer, _generational_emulator_class, require_module
from tests.temporal_env import dev_env  # noqa: F401
from workers.worker import build_worker
from workflows.pipeline_spec import PipelineSpec, pipeline_problems
from workflows.release_client import release_result
from workflows.release_models import ReleaseInput, ReleaseResult, release_id

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
CONTEXTS = ["eu-1", "us-east", "spare"]
RESOURCES = [
    "apps/v1/deployments",
    "v1/services",
    "v1/secrets",
    "gateway.networking.k8s.io/v1/httproutes",
]


@contextlib.contextmanager
def kmock_servers(n: int) -> Iterator[list[KubeServer]]:
    """``n`` kmock emulators, each behind its own ``kmock.Server`` on 127.0.0.1, all in
    one background event loop (blocking ``kubernetes`` clients call them)."""
    kmock = require_module("kmock", "kmock not installed (pip install kmock)")
    loop = asyncio.new_event_loop()
    started = threading.Event()
    state: dict[str, Any] = {"servers": []}

    async def serve() -> None:
        async with contextlib.AsyncExitStack() as stack:
            for _ in range(n):
                emu = await stack.enter_async_context(_generational_emulator_class()())
                for res in RESOURCES:  # the kinds an API server serves (kmock: once declared)
                    emu.resources[res] = {}
                srv = await stack.enter_async_context(kmock.Server(emu, host="127.0.0.1"))
                state["servers"].append(KubeServer(f"http://127.0.0.1:{srv.port}", emu))
            state["stop"] = asyncio.Event()
            started.set()
            await state["stop"].wait()

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(serve())
        except BaseException as exc:  # noqa: BLE001 - reported to the waiting test
            state["error"] = exc
            started.set()

    thread = threading.Thread(target=run, name="kmock-n", daemon=True)
    thread.start()
    assert started.wait(30) and "error" not in state, state.get("error")
    try:
        yield state["servers"]
    finally:
        loop.call_soon_threadsafe(state["stop"].set)
        thread.join(10)


def write_kubeconfig(path: Path, servers: dict[str, KubeServer]) -> Path:
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "spare",
        "clusters": [{"name": n, "cluster": {"server": s.url}} for n, s in servers.items()],
        "users": [{"name": "tester", "user": {"token": "not-a-secret"}}],
        "contexts": [{"name": n, "context": {"cluster": n, "user": "tester"}} for n in servers],
    }
    path.write_text(yaml.safe_dump(doc))
    return path


def pipeline(service: str, us_context: str = "us-east") -> dict[str, Any]:
    return {
        "service": service,
        "deployment": {
            "artifact": {"image": "registry.example/web:r1", "port": 8080},
            "health_check": {"path": "/ready", "timeout": "20s", "interval": "2s"},
            "strategy": {"type": "rolling"},
        },
        "stages": [
            {
                "name": "prod",
                "targets": [
                    {
                        "environment": "prod",
                        "cluster": "eu-1",
                        "platform": "kubernetes",
                        "replicas": 2,
                        "env": {"REGION": "eu-1"},
                    },
                    {
                        "environment": "prod",
                        "cluster": "us-1",
                        "platform": "kubernetes",
                        "kube_context": us_context,
                        "replicas": 3,
                        "env": {"REGION": "us"},
                    },
                ],  # fmt: skip
            }
        ],
    }


def deployments(kube: KubeServer) -> dict[str, tuple[Any, dict[str, Any]]]:
    """Every Deployment on ``kube``: ``ns/name`` → (replicas, container env)."""
    out = {}
    for d in client.AppsV1Api(kube.api_client()).list_deployment_for_all_namespaces().items:
        env = {e.name: e.value for e in d.spec.template.spec.containers[0].env or []}
        out[f"{d.metadata.namespace}/{d.metadata.name}"] = (d.spec.replicas, env)
    return out


async def test_each_target_reaches_only_its_contexts_api_server(
    dev_env: WorkflowEnvironment,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with kmock_servers(3) as kubes:
        servers = dict(zip(CONTEXTS, kubes, strict=True))
        ctls = [FakeDeploymentController(k.api_client()) for k in kubes]
        for c in ctls:
            c.thread.start()
        try:
            kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", servers)
            monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
            svc = f"kc{uuid.uuid4().hex[:6]}"
            res = await run_release(dev_env, tmp_path, pipeline(svc))
        finally:
            for c in ctls:
                c.stop.set()
                c.thread.join(5)
        assert res.outcome == "promoted", res.reason
        name = f"prod/{svc}-r1"
        assert deployments(servers["eu-1"]) == {name: (2, {"REGION": "eu-1", "PORT": "8080"})}
        assert deployments(servers["us-east"]) == {name: (3, {"REGION": "us", "PORT": "8080"})}
        assert deployments(servers["spare"]) == {}  # the current context got nothing
        for ctx, kube in servers.items():  # nor any other object of the release
            kinds = {key[0] for key, obj in kube.emulator.objects.items() if not obj.deleted}
            assert bool(kinds) == (ctx != "spare"), (ctx, kinds)


async def run_release(env: WorkflowEnvironment, state: Path, doc: dict[str, Any]) -> ReleaseResult:
    settings = Settings(state_dir=state / "state", task_queue=f"kc-{uuid.uuid4().hex[:8]}")
    p = PipelineSpec.model_validate(doc)
    async with build_worker(env.client, settings):
        h = await env.client.start_workflow(
            "ReleaseWorkflow",
            ReleaseInput(pipeline=p, version="r1", actor="test"),
            id=release_id(p.service, "r1"),
            task_queue=settings.task_queue,
            result_type=ReleaseResult,
        )
        return await asyncio.wait_for(release_result(h), 120)


async def test_unknown_kube_context_is_refused_and_nothing_starts(
    dev_env: WorkflowEnvironment,  # noqa: F811
    tmp_path: Path,
) -> None:
    with kmock_servers(2) as kubes:
        kubeconfig = write_kubeconfig(
            tmp_path / "kubeconfig", dict(zip(CONTEXTS, kubes, strict=False))
        )
        svc = f"ku{uuid.uuid4().hex[:6]}"
        path = tmp_path / "pipeline.yaml"
        path.write_text(yaml.safe_dump(pipeline(svc, us_context="mars-1")))
        target = dev_env.client.service_client.config.target_host
        run = subprocess.run(
            [sys.executable, "-m", "workers.cli", "release", str(path), "--version", "r1"],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=ROOT,
            env={
                **os.environ,
                "KUBECONFIG": str(kubeconfig),
                "CODE_TEMPORAL_ADDRESS": target,
                "CODE_STATE_DIR": str(tmp_path / "state"),
                "COLUMNS": "200",
            },
        )
        out = run.stdout + run.stderr
        assert run.returncode == 2, out
        assert "stages[0] (prod).targets[1]: unknown kube context 'mars-1'" in out, out
        assert "eu-1, us-east" in out, out  # the contexts it does have
        with pytest.raises(RPCError, match="not found"):
            await dev_env.client.get_workflow_handle(release_id(svc, "r1")).describe()
        assert all(deployments(k) == {} for k in kubes)


def test_local_is_the_default_context_and_unknown_names_the_known(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    servers = {n: KubeServer(f"http://127.0.0.1:{i + 1}", None) for i, n in enumerate(CONTEXTS)}
    monkeypatch.setenv("KUBECONFIG", str(write_kubeconfig(tmp_path / "kc", servers)))
    settings = Settings(state_dir=tmp_path, kube_context="us-east")
    assert kube_contexts() == ["eu-1", "spare", "us-east"]
    for default in (None, "local"):  # the worker's CODE_KUBE_CONTEXT, unchanged
        assert kube_settings(settings, default).kube_context == "us-east"
    assert kube_settings(settings, "eu-1").kube_context == "eu-1"
    with pytest.raises(ConfigError, match="unknown kube context 'mars-1': .* has eu-1, spare"):
        kube_settings(settings, "mars-1")
    p = PipelineSpec.model_validate(pipeline("web", us_context="mars-1"))
    p.stages[0].targets.append(p.stages[0].targets[0].model_copy(update={"name": "dflt",
                               "cluster": "local"}))  # fmt: skip
    now = datetime.now(UTC)
    assert pipeline_problems(p, None, now, kube_contexts()) == [
        "stages[0] (prod).targets[1]: unknown kube context 'mars-1' "
        "(the kubeconfig has: eu-1, spare, us-east)"
    ]
    assert pipeline_problems(p, None, now) == []  # contexts not known: not checked


async def test_broken_kubeconfig_blocks_only_kubernetes_releases(
    dev_env: WorkflowEnvironment,  # noqa: F811
    tmp_path: Path,
) -> None:
    """The kubeconfig is read only when a target is on Kubernetes: a broken one refuses a
    Kubernetes release (exit 2, naming the file) and never blocks a local-only one."""
    bad = tmp_path / "kubeconfig"
    bad.write_text("contexts: [unclosed\n")
    target = dev_env.client.service_client.config.target_host
    svc = f"kb{uuid.uuid4().hex[:6]}"
    local = pipeline(svc)
    local["stages"][0]["targets"] = [{"environment": "dev", "platform": "local"}]

    def release(doc: dict[str, Any], name: str) -> subprocess.CompletedProcess[str]:
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(doc))
        return subprocess.run(
            [sys.executable, "-m", "workers.cli", "release", str(path), "--version", name],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=ROOT,
            env={
                **os.environ,
                "KUBECONFIG": str(bad),
                "CODE_TEMPORAL_ADDRESS": target,
                "CODE_STATE_DIR": str(tmp_path / "state"),
                "COLUMNS": "200",
            },
        )

    kube = release(pipeline(svc), "k1")
    assert kube.returncode == 2, kube.stdout + kube.stderr
    assert f"kubeconfig {bad} cannot be read" in kube.stdout + kube.stderr
    with pytest.raises(RPCError, match="not found"):
        await dev_env.client.get_workflow_handle(release_id(svc, "k1")).describe()
    ok = release(local, "l1")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    handle = dev_env.client.get_workflow_handle(release_id(svc, "l1"))
    assert (await handle.describe()).workflow_type == "ReleaseWorkflow"
    await handle.terminate("test: no worker runs this release")
