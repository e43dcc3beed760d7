"""Shared bits of the observability tests: a canary spec and a worker on fakes."""

from __future__ import annotations

import uuid
from typing import Any

from temporalio.client import Client
from temporalio.worker import Worker

from tests.workflows.fakes import FakePlatform
from workflows.deployment import DeploymentWorkflow
from workflows.lane import ReleaseLaneWorkflow
from workflows.rollback import RollbackWorkflow
from workflows.spec import DeploymentSpec, parse_spec

SECRET_MARKER = "hunter2-topsecret-value"


def canary_spec(version: str, extra: str = "", steps: str = "") -> DeploymentSpec:
    steps = (
        steps
        or """
      - set_weight: 20
      - pause: {duration: 1h}
      - analysis: {interval: 5m, count: 2}
      - set_weight: 60
"""
    )
    return parse_spec(
        f"""
service: shop
environment: prod
version: {version}
artifact:
  command: ["{{python}}", "svc.py"]
  env: {{API_KEY: {SECRET_MARKER}}}
{extra}strategy:
  type: canary
  canary:
    steps:
{steps}
"""
    )


def fake_worker(
    client: Client, fake: FakePlatform, extra: list[Any] | None = None, **kw: Any
) -> tuple[Worker, str]:
    """A worker on the fake platform; ``extra`` activities replace fakes of the same name."""
    from temporalio import activity

    tq = f"obs-{uuid.uuid4()}"
    by_name = {
        activity._Definition.must_from_callable(a).name: a
        for a in [*fake.activities(), *(extra or [])]
    }
    return (
        Worker(
            client,
            task_queue=tq,
            workflows=[DeploymentWorkflow, RollbackWorkflow, ReleaseLaneWorkflow],
            activities=list(by_name.values()),
            **kw,
        ),
        tq,
    )
