"""Typed client helpers: the data converter used by every Client, Worker and
Replayer, connecting, and starting deployments and rollbacks.

The converter is per client: :func:`data_converter` builds the pydantic converter
with the payload codec it is given (e.g. ``workers.codec.EncryptionCodec``), and
:func:`connect` passes it to the client it makes (workers inherit the client's).
There is no process-wide codec: two clients in one process may differ.

:func:`deployment_result` awaits a deployment's handle and returns its
``DeployResult`` whether it promoted (COMPLETED) or ended rolled back, failed or
aborted (FAILED, carrying the result: :mod:`workflows.outcome`)."""

from __future__ import annotations

import dataclasses
from typing import Any

from temporalio.client import Client, WorkflowFailureError
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, PayloadCodec

from code_foundation.names import W
from workflows.models import DeployResult
from workflows.outcome import deploy_result_from_failure


def data_converter(codec: PayloadCodec | None = None) -> DataConverter:
    """The pydantic data converter, with ``codec`` on its payloads when given."""
    if codec is None:
        return pydantic_data_converter
    return dataclasses.replace(pydantic_data_converter, payload_codec=codec)


async def connect(
    address: str,
    namespace: str = "default",
    *,
    codec: PayloadCodec | None = None,
    **kwargs: Any,
) -> Client:
    """A client whose converter carries ``codec`` (see :func:`data_converter`)."""
    return await Client.connect(
        address, namespace=namespace, data_converter=data_converter(codec), **kwargs
    )


def deploy_search_attributes(spec: Any) -> Any:
    from temporalio.common import SearchAttributePair, TypedSearchAttributes

    from code_foundation import names

    return TypedSearchAttributes(
        [
            SearchAttributePair(names.SA_SERVICE, spec.service),
            SearchAttributePair(names.SA_ENVIRONMENT, spec.environment),
            SearchAttributePair(names.SA_VERSION, spec.version),
            SearchAttributePair(names.SA_STRATEGY, spec.strategy.type),
            SearchAttributePair(names.SA_OUTCOME, "running"),
            SearchAttributePair(names.SA_KIND, "deployment"),
        ]
    )


def deploy_summary(spec: Any) -> tuple[str, str]:
    """Static summary/details shown on the run's page in the Web UI."""
    steps = ""
    if spec.strategy.canary is not None:
        steps = " → ".join(s.describe() for s in spec.strategy.canary.steps)
    summary = f"{spec.strategy.type} {spec.service} {spec.version} to {spec.environment}"
    details = (
        f"**service** {spec.service}  \n**environment** {spec.environment}  \n"
        f"**version** {spec.version}  \n**strategy** {spec.strategy.type}  \n"
        f"**platform** {spec.platform}  \n**replicas** {spec.replicas}  \n"
        + (f"**steps** {steps}  \n" if steps else "")
    )
    return summary, details


async def start_deployment(
    client: Any, spec: Any, actor: str, task_queue: str, token: str | None = None, **kwargs: Any
) -> Any:
    """Start DeploymentWorkflow with its readable id, search attributes and summary
    (``token``: the starter's OIDC token, verified inside the workflow when identity is on)."""
    from workflows.models import DeployInput

    summary, details = deploy_summary(spec)
    return await client.start_workflow(
        W.DEPLOYMENT,
        DeployInput(spec=spec, actor=actor, token=token),
        id=spec.workflow_id(),
        task_queue=task_queue,
        search_attributes=deploy_search_attributes(spec),
        static_summary=summary,
        static_details=details,
        **kwargs,
    )


async def start_rollback(
    client: Any,
    service: str,
    environment: str,
    to_version: str | None,
    actor: str,
    task_queue: str,
    request_id: str,
    reason: str = "manual rollback",
) -> Any:
    """``request_id`` (chosen by the caller, e.g. a uuid) makes each manual rollback its own run."""
    from temporalio.common import SearchAttributePair, TypedSearchAttributes

    from code_foundation import names
    from workflows.models import RollbackInput

    target = to_version or "last-known-good"
    return await client.start_workflow(
        W.ROLLBACK,
        RollbackInput(
            service=service,
            environment=environment,
            to_version=to_version,
            reason=reason,
            actor=actor,
        ),
        id=f"rollback-{service}-{environment}-to-{target}-{request_id}",
        task_queue=task_queue,
        search_attributes=TypedSearchAttributes(
            [
                SearchAttributePair(names.SA_SERVICE, service),
                SearchAttributePair(names.SA_ENVIRONMENT, environment),
                SearchAttributePair(names.SA_KIND, "rollback"),
                SearchAttributePair(names.SA_OUTCOME, "running"),
            ]
        ),
        static_summary=f"rollback {service} in {environment} to {target}",
    )


async def deployment_result(handle: Any, **kwargs: Any) -> DeployResult:
    """The structured result of the deployment behind ``handle`` (``kwargs`` go to
    ``handle.result``): promoted, or the result a not-promoted run failed with.
    Any other failure (cancelled, terminated, timed out, lane busy...) is re-raised."""
    try:
        raw = await handle.result(**kwargs)
    except WorkflowFailureError as exc:
        result = deploy_result_from_failure(exc)
        if result is None:
            raise
        return result
    return raw if isinstance(raw, DeployResult) else DeployResult.model_validate(raw)


async def execute_deployment(client: Client, *args: Any, **kwargs: Any) -> DeployResult:
    """``client.execute_workflow`` for a deployment, returning :func:`deployment_result`."""
    return await deployment_result(await client.start_workflow(*args, **kwargs))
