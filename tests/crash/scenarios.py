"""The crash matrix's workflow types, each a short real scenario on a fresh stack.

Contract: a :class:`Scenario` has ``setup`` (releases it needs first, run to completion
before any crash point is armed), ``start`` (starts the workflow under test and returns
its handle) and ``outcome`` (the run's result reduced to what must not change under a
crash: a deployment's outcome and version, a rollback's restored version, a chaos
experiment's status with its rollbacks and reverts, a soak's verdict). ``expected`` is
the outcome the issue asks for; the matrix also checks that a run without a crash
reaches it. Every scenario takes seconds: one replica, 200 ms health checks, 1 s pauses."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from tests.crash.stack import CrashStack
from tests.platform.agent_proc import EXAMPLES
from workflows.client import deployment_result
from workflows.spec import DeploymentSpec, parse_spec

ENV = "dev"
THRESHOLDS = {
    "max_error_rate": 0.05,
    "max_error_rate_increase": 0.02,
    "max_p99_latency_ratio": 3.0,
    "min_requests": 10,
}


def spec(svc: str, version: str, strategy: dict[str, Any], error_rate: str = "0") -> DeploymentSpec:
    base = parse_spec((EXAMPLES / "demo-v1.yaml").read_text(), "demo-v1.yaml")
    doc = base.model_dump(mode="json")
    doc.update(service=svc, environment=ENV, version=version, replicas=1, strategy=strategy)
    doc["artifact"].update(
        workdir=str(EXAMPLES), env={"DEMO_ERROR_RATE": error_rate, "DEMO_LATENCY_MS": "5"}
    )
    doc["health_check"] = {"path": "/healthz", "timeout": "20s", "interval": "200ms"}
    return DeploymentSpec.model_validate(doc)


ROLLING = {"type": "rolling"}
CANARY = {
    "type": "canary",
    "canary": {"steps": [{"set_weight": 30}, {"pause": {"duration": "1s"}}, {"set_weight": 60}]},
}
BAD_CANARY = {
    "type": "canary",
    "canary": {
        "steps": [
            {"set_weight": 40},
            {"analysis": {"interval": "2s", "count": 2, "thresholds": THRESHOLDS}},
            {"set_weight": 80},
        ]
    },
}
BLUE_GREEN = {"type": "blue_green", "blue_green": {"auto_promote": True}}


async def deploy(stack: CrashStack, s: DeploymentSpec) -> Any:
    from workflows.client import start_deployment

    return await start_deployment(await stack.client(), s, "crash-matrix", stack.task_queue)


async def deployed(stack: CrashStack, s: DeploymentSpec) -> None:
    from workflows.models import DeployResult

    h = await deploy(stack, s)
    client = await stack.client()
    res = await deployment_result(client.get_workflow_handle(h.id, result_type=DeployResult))
    if res.outcome != "promoted":
        raise RuntimeError(f"setup release {s.version} was {res.outcome}: {res.reason}")


def deploy_outcome(res: Any) -> str:
    return f"{res.outcome} {res.version}"


async def start_manual_rollback(stack: CrashStack, svc: str) -> Any:
    from workflows.client import start_rollback

    client = await stack.client()
    return await start_rollback(
        client, svc, ENV, None, "crash-matrix", stack.task_queue, uuid.uuid4().hex[:6]
    )


def rollback_outcome(res: Any) -> str:
    return f"{res.outcome} restored={res.restored_version} retired={res.retired_version}"


def experiment(svc: str, endpoint: str) -> Any:
    from chaos.model import parse_experiment

    target = {"service": svc, "environment": ENV}
    return parse_experiment(
        {
            "title": "crash matrix latency",
            "configuration": {"endpoint": endpoint},
            "steady_state": {
                "probes": [{"name": "work", "url": "${endpoint}/work", "timeout": "2s"}]
            },
            "method": [
                {
                    "action": {
                        "name": "slow-work",
                        "fault": "latency",
                        "target": target,
                        "params": {"latency_ms": 20, "fraction": 1.0, "route_prefix": "/work"},
                    }
                }
            ],
            "rollbacks": [
                {"name": "restore-v1", "action": "restore", "target": {**target, "version": "v1"}}
            ],
            "controls": {"duration": "3s", "probe_interval": "1s"},
        },
        environ={},
    )


async def start_chaos(stack: CrashStack, svc: str) -> Any:
    from workers.cli.chaos_runs import start_run

    endpoint = await stack.endpoint(svc, ENV)
    return await start_run(
        await stack.client(), experiment(svc, endpoint), stack.task_queue, "crash"
    )


def chaos_outcome(res: Any) -> str:
    j = res.journal
    reverted = all(f.reverted_at is not None for f in j.faults) and bool(j.faults)
    ran = bool(j.rollbacks) and not j.rollback_failed
    return f"{res.status} deviated={res.deviated} reverted={reverted} rollbacks_ran={ran}"


async def start_soak(stack: CrashStack, svc: str) -> Any:
    from loadtest.soak_models import SoakPlan
    from workers.cli.soak import start_soak as start

    plan = SoakPlan.model_validate(
        {
            "name": "crash-soak",
            "target": {"service": svc, "environment": ENV},
            "scenario": {
                "name": "crash",
                "base_url": "http://127.0.0.1:1",  # replaced by the router endpoint
                "timeout": "5s",
                "targets": [{"name": "work", "method": "GET", "path": "/work"}],
            },
            "rate": 10,
            "duration": "6s",
            "slice": "2s",
            "baseline": "2s",
            "max_vus": 20,
            "checks": {"slo": {"objective": 0.9}, "p99_drift": None, "resources": None},
        }
    )
    wid = f"soak-{svc}-{uuid.uuid4().hex[:6]}"
    return await start(await stack.client(), plan, stack.settings(), workflow_id=wid)


def soak_outcome(res: Any) -> str:
    return f"verdict={res.verdict}"


def release_pipeline(svc: str) -> Any:
    """One stage in ``dev``, one wave of one target whose deployment is a canary: a kill
    of the worker mid-wave lands while the release's child deployment is running."""
    from workflows.pipeline_spec import PipelineSpec

    base = spec(svc, "v2", CANARY).model_dump(mode="json")
    keys = ("artifact", "replicas", "health_check", "strategy", "analysis_defaults", "rollback")
    return PipelineSpec.model_validate(
        {
            "service": svc,
            "deployment": {k: base[k] for k in keys},
            "stages": [{"name": "dev", "targets": [{"environment": ENV}]}],
        }
    )


async def start_release(stack: CrashStack, svc: str) -> Any:
    from code_foundation.names import W
    from workflows.release_models import ReleaseInput, release_id

    client = await stack.client()
    return await client.start_workflow(
        W.RELEASE,
        ReleaseInput(pipeline=release_pipeline(svc), version="v2", actor="crash-matrix"),
        id=release_id(svc, "v2"),
        task_queue=stack.task_queue,
        static_summary=f"release {svc} v2",
    )


def release_outcome(res: Any) -> str:
    cells = ",".join(f"{c.stage}/{c.target}={c.phase}" for c in res.cells)
    return f"{res.outcome} {res.version} {cells}"


Release = tuple[str, dict[str, Any], str]  # version, strategy, error rate


@dataclass(frozen=True)
class Scenario:
    name: str
    setup: tuple[Release, ...]
    start: Callable[[CrashStack, str], Awaitable[Any]]
    result_type: str  # DeployResult | RollbackResult | ChaosResult | SoakResult | ReleaseResult
    outcome: Callable[[Any], str]
    expected: str
    bad_version: str | None = None  # a release that fails requests by design

    def setup_specs(self, svc: str) -> list[DeploymentSpec]:
        return [spec(svc, v, strategy, err) for v, strategy, err in self.setup]


def _release(version: str, strategy: dict[str, Any], error_rate: str = "0") -> Any:
    async def go(stack: CrashStack, svc: str) -> Any:
        return await deploy(stack, spec(svc, version, strategy, error_rate))

    return go


V1: Release = ("v1", ROLLING, "0")
V2: Release = ("v2", ROLLING, "0")
SCENARIOS: dict[str, Scenario] = {
    sc.name: sc
    for sc in (
        Scenario(
            "canary", (V1,), _release("v2", CANARY), "DeployResult", deploy_outcome,
            "promoted v2",
        ),
        Scenario(
            "blue-green", (V1,), _release("v2", BLUE_GREEN), "DeployResult", deploy_outcome,
            "promoted v2",
        ),
        Scenario(
            "rolling", (V1,), _release("v2", ROLLING), "DeployResult", deploy_outcome,
            "promoted v2",
        ),
        Scenario(
            "compensating-rollback", (V1,), _release("v3", BAD_CANARY, "0.5"), "DeployResult",
            deploy_outcome, "rolled_back v3", bad_version="v3",
        ),
        Scenario(
            "manual-rollback", (V1, V2), start_manual_rollback, "RollbackResult",
            rollback_outcome, "rolled_back restored=v1 retired=v2",
        ),
        Scenario(
            "chaos", (V1,), start_chaos, "ChaosResult", chaos_outcome,
            "completed deviated=False reverted=True rollbacks_ran=True",
        ),
        Scenario("soak", (V1,), start_soak, "SoakResult", soak_outcome, "verdict=pass"),
        Scenario(
            "release", (V1,), start_release, "ReleaseResult", release_outcome,
            "promoted v2 dev/local=promoted",
        ),
    )
}  # fmt: skip


def result_class(name: str) -> type:
    from chaos.messages import ChaosResult
    from loadtest.soak_models import SoakResult
    from workflows.models import DeployResult, RollbackResult
    from workflows.release_models import ReleaseResult

    classes = {
        "ReleaseResult": ReleaseResult,
        "DeployResult": DeployResult,
        "RollbackResult": RollbackResult,
        "ChaosResult": ChaosResult,
        "SoakResult": SoakResult,
    }
    return classes[name]
