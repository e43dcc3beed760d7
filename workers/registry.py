"""Which workflows and activities a CODE worker hosts. Each feature adds its
workflow classes and activity callables here; nothing else decides it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from activities.settings import Settings


def workflows() -> list[type]:
    from workflows.deployment import DeploymentWorkflow
    from workflows.rollback import RollbackWorkflow
    from workflows.chaos import ChaosExperimentWorkflow  # noqa: I001

    return [DeploymentWorkflow, RollbackWorkflow, ChaosExperimentWorkflow, __import__("workflows.soak").soak.SoakTestWorkflow]  # noqa: E501 - soak tests


def activities(settings: Settings) -> list[Callable[..., Any]]:
    from activities.deploy import deploy_activities

    acts: list[Callable[..., Any]] = []
    acts += deploy_activities(settings)
    acts += __import__("activities.chaos").chaos.chaos_activities(settings)  # chaos experiments
    acts += __import__("activities.soak").soak.soak_activities(settings)  # soak tests
    acts += __import__("activities.slo").slo.slo_activities(settings)  # error budgets + audit (issue 8)
    return acts
