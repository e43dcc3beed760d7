"""Which workflows and activities a CODE worker hosts. Each feature adds its
workflow classes and activity callables here; nothing else decides it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from activities.settings import Settings


def workflows() -> list[type]:
    from workflows.chaos import ChaosExperimentWorkflow
    from workflows.deployment import DeploymentWorkflow
    from workflows.lane import ReleaseLaneWorkflow
    from workflows.notify import NotifyWorkflow
    from workflows.readiness import ReadinessWorkflow
    from workflows.release import ReleaseWorkflow
    from workflows.rollback import RollbackWorkflow
    from workflows.soak import SoakTestWorkflow

    return [
        DeploymentWorkflow,
        RollbackWorkflow,
        ReleaseLaneWorkflow,
        NotifyWorkflow,
        ReleaseWorkflow,
        ChaosExperimentWorkflow,
        SoakTestWorkflow,
        ReadinessWorkflow,
    ]


def activities(settings: Settings) -> list[Callable[..., Any]]:
    from activities.analysis.measure import measure_activities
    from activities.chaos import chaos_activities
    from activities.deploy import deploy_activities
    from activities.hooks import hook_activities
    from activities.identity import identity_activities
    from activities.lane import lane_activities
    from activities.notify import notify_activities
    from activities.readiness import readiness_activities
    from activities.slo import slo_activities
    from activities.soak import soak_activities

    return [
        *deploy_activities(settings),  # deployments, rollbacks, analysis, ledger
        *measure_activities(settings),  # analysis measurements: Web and Job metrics
        *hook_activities(settings),  # lifecycle hooks: HTTP calls and command jobs
        *notify_activities(settings),  # notification deliveries (webhook, Slack, Alertmanager)
        *chaos_activities(settings),  # chaos experiments: probes, faults, journal
        *soak_activities(settings),  # soak slices and reports
        *slo_activities(settings),  # error budgets and the audit log
        *lane_activities(),  # release lanes: one change at a time per service/environment
        *identity_activities(settings),  # identity: the issuer's keys and the access policy
        *readiness_activities(settings),  # readiness certificates: evidence and reports
    ]
