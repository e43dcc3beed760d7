"""Which workflows and activities a CODE worker hosts. Each feature adds its
workflow classes and activity callables here; nothing else decides it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from activities.settings import Settings


def workflows() -> list[type]:
    from workflows.deployment import DeploymentWorkflow
    from workflows.rollback import RollbackWorkflow

    return [DeploymentWorkflow, RollbackWorkflow]


def activities(settings: Settings) -> list[Callable[..., Any]]:
    from activities.deploy import deploy_activities

    acts: list[Callable[..., Any]] = []
    acts += deploy_activities(settings)
    return acts
