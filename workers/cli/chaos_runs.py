"""Planning, starting and scheduling chaos experiments: the library side of
``codectl chaos`` (:mod:`workers.cli.chaos`), also used by tests.

* :func:`load` reads an experiment file through :mod:`code_foundation.loader` (a
  missing, binary or non-UTF-8 file is a ``SpecError``, exit 2) and validates it
  (native or Chaos Toolkit format); nothing is started or injected for a bad file.
  ``{type: endpoint, service, environment}`` configuration values are the service's
  router endpoint, asked of the local agent (:func:`agent_endpoints`).
* :func:`plan` asks the platform for candidates and returns the exact targets each
  action would hit with a seed (``--dry-run``).
* :func:`start_run` starts ``ChaosExperimentWorkflow``; :func:`create_schedule` creates
  a Temporal Schedule for it (overlap ``skip`` by default)."""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from activities.settings import Settings
from chaos.blast import Target, merge_protected, select_targets
from chaos.catalogue import CATALOGUE
from chaos.messages import ChaosRunInput
from chaos.model import Experiment, load_experiment
from code_foundation.errors import CodeError, ServerUnavailable
from code_foundation.loader import read_text
from workers.cli.common import token


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40] or "experiment"


def load(path: Path, settings: Settings | None = None) -> Experiment:
    """Load + validate (protected lists from the experiment and the environment);
    ``{type: endpoint}`` configuration values are asked of the local agent."""
    read_text(path)  # a missing, binary or non-UTF-8 file: SpecError with the reason
    return load_experiment(path, endpoints=agent_endpoints(settings or Settings()))


def agent_endpoints(settings: Settings) -> Callable[[str, str], str]:
    """The router endpoint of a service on the local agent: ValueError when it is not
    deployed, :class:`ServerUnavailable` (exit 3) when the agent cannot be reached."""
    import httpx

    def lookup(service: str, env: str) -> str:
        url = f"{settings.agent_url}/v1/services/{service}/{env}"
        try:
            r = httpx.get(url, timeout=10.0, trust_env=False)
        except httpx.HTTPError as exc:
            raise ServerUnavailable(
                f"the local platform agent at {settings.agent_url} cannot be reached to find "
                f"the endpoint of {service}/{env} ({type(exc).__name__}); start the stack: "
                "codectl dev --detach (or codectl demo)"
            ) from None
        if r.status_code == 404:
            raise ValueError(
                f"{service}/{env} is not deployed on the local platform, so it has no endpoint "
                "(deploy it first, e.g. codectl deploy deploy/examples/demo-v1.yaml, or run "
                "codectl demo)"
            )
        if not r.is_success:
            raise ServerUnavailable(f"the agent answered {r.status_code} for {url}: {r.text[:200]}")
        return str(r.json()["endpoint"]).rstrip("/")

    return lookup


def protected_for(exp: Experiment) -> dict[str, list[str]]:
    return merge_protected(exp.protected, os.environ)


async def plan(
    exp: Experiment, settings: Settings, seed: int | None = None
) -> dict[str, list[Target]]:
    """The exact targets of every action, as the workflow will choose them."""
    from activities.faults.local import LocalFaults

    seed = exp.seed if seed is None else seed
    out: dict[str, list[Target]] = {}
    for action in exp.actions():
        sel, unit = action.target, CATALOGUE[action.fault].unit
        cands: list[Target] = []
        if unit == "instance":
            if sel.platform == "kubernetes":
                from activities.faults.kubernetes import KubernetesFaults

                cands = await KubernetesFaults(settings.kube_context).candidates(
                    sel.service, sel.environment
                )
            else:
                try:
                    cands = await LocalFaults(settings.agent_url, settings.state_dir).candidates(
                        sel.service, sel.environment
                    )
                except CodeError as exc:
                    raise ServerUnavailable(str(exc)) from None
        out[action.name] = select_targets(unit, sel, cands, seed, action.name)
    return out


def run_input(
    exp: Experiment, actor: str, seed: int | None = None, search_attributes: bool = True
) -> ChaosRunInput:
    return ChaosRunInput(
        experiment=exp,
        actor=actor,
        seed=seed,
        protected=protected_for(exp),
        set_search_attributes=search_attributes,
        token=token(),  # the caller's (codectl login / $CODE_TOKEN), verified by the run
    )


async def start_run(
    client: Any,
    exp: Experiment,
    task_queue: str,
    actor: str,
    seed: int | None = None,
    workflow_id: str | None = None,
) -> Any:
    from workflows.chaos import ChaosExperimentWorkflow

    wid = workflow_id or f"chaos-{_slug(exp.title)}-{uuid.uuid4().hex[:8]}"
    return await client.start_workflow(
        ChaosExperimentWorkflow.run,
        run_input(exp, actor, seed),
        id=wid,
        task_queue=task_queue,
        static_summary=f"chaos: {exp.title}",
        static_details=exp.description or None,
    )


async def create_schedule(
    client: Any,
    exp: Experiment,
    task_queue: str,
    actor: str,
    *,
    cron: str | None = None,
    every: timedelta | None = None,
    pause_on_failure: bool = False,
    overlap: str = "skip",
    schedule_id: str | None = None,
    search_attributes: bool = True,
) -> str:
    """Create a Temporal Schedule that runs the experiment (overlap SKIP by default)."""
    from temporalio.client import (
        Schedule,
        ScheduleActionStartWorkflow,
        ScheduleIntervalSpec,
        ScheduleOverlapPolicy,
        SchedulePolicy,
        ScheduleSpec,
        ScheduleState,
    )

    from workflows.chaos import ChaosExperimentWorkflow

    if not cron and not every:
        raise CodeError("a schedule needs --cron")
    policies = {
        "skip": ScheduleOverlapPolicy.SKIP,
        "buffer_one": ScheduleOverlapPolicy.BUFFER_ONE,
        "buffer_all": ScheduleOverlapPolicy.BUFFER_ALL,
        "cancel_other": ScheduleOverlapPolicy.CANCEL_OTHER,
        "allow_all": ScheduleOverlapPolicy.ALLOW_ALL,
    }
    if overlap not in policies:
        raise CodeError(f"--overlap must be one of {', '.join(policies)}")
    sid = schedule_id or f"chaos-{_slug(exp.title)}"
    spec = ScheduleSpec(
        cron_expressions=[cron] if cron else [],
        intervals=[ScheduleIntervalSpec(every=every)] if every else [],
    )
    await client.create_schedule(
        sid,
        Schedule(
            action=ScheduleActionStartWorkflow(
                ChaosExperimentWorkflow.run,
                run_input(exp, actor, search_attributes=search_attributes),
                id=f"{sid}-run",
                task_queue=task_queue,
                static_summary=f"chaos (scheduled): {exp.title}",
            ),
            spec=spec,
            policy=SchedulePolicy(overlap=policies[overlap], pause_on_failure=pause_on_failure),
            state=ScheduleState(note=f"created by {actor} from {exp.source or 'an experiment'}"),
        ),
    )
    return sid


def experiment_json(path: Path) -> str:
    """The validated experiment as JSON (debug helper)."""
    return json.dumps(load(path).model_dump(mode="json"), indent=2)
