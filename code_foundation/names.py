"""Task queue, workflow names, activity names and search-attribute keys shared by
workflows, activities, workers and clients. Workflows refer to activities by
these names only, so workflow code never imports I/O modules. These strings are
recorded in histories: changing one breaks replay of running workflows."""

from __future__ import annotations

from temporalio.common import SearchAttributeKey

TASK_QUEUE = "code-engine"

# search attributes (registered on the dev server by `codectl dev`)
SA_SERVICE = SearchAttributeKey.for_keyword("CodeService")
SA_ENVIRONMENT = SearchAttributeKey.for_keyword("CodeEnvironment")
SA_VERSION = SearchAttributeKey.for_keyword("CodeVersion")
SA_STRATEGY = SearchAttributeKey.for_keyword("CodeStrategy")
SA_OUTCOME = SearchAttributeKey.for_keyword("CodeOutcome")
SA_KIND = SearchAttributeKey.for_keyword("CodeKind")
SEARCH_ATTRIBUTES = {
    "CodeService": "Keyword",
    "CodeEnvironment": "Keyword",
    "CodeVersion": "Keyword",
    "CodeStrategy": "Keyword",
    "CodeOutcome": "Keyword",
    "CodeKind": "Keyword",
}


class W:
    """Workflow type names (``@workflow.defn(name=W.X)``)."""

    DEPLOYMENT = "DeploymentWorkflow"
    ROLLBACK = "RollbackWorkflow"
    CHAOS = "ChaosExperimentWorkflow"
    SOAK = "SoakTestWorkflow"
    LANE = "ReleaseLaneWorkflow"
    NOTIFY = "NotifyWorkflow"
    RELEASE = "ReleaseWorkflow"
    READINESS = "ReadinessWorkflow"


class A:
    """Activity names of deployments and rollbacks (``@activity.defn(name=A.X)``)."""

    VALIDATE_SPEC = "validate.spec"
    PLATFORM_APPLY = "platform.apply_version"
    PLATFORM_TRAFFIC = "platform.set_traffic"
    PLATFORM_RETIRE = "platform.retire_version"
    PLATFORM_DESCRIBE = "platform.describe"
    ANALYSE = "analysis.run"
    ANALYSIS_MEASURE = "analysis.measure"
    LEDGER_RECORD = "ledger.record"
    LEDGER_LAST_GOOD = "ledger.last_known_good"
    BUDGET = "slo.error_budget"
    AUDIT = "audit.record"
    HOOK_RUN = "hooks.run"
    IDENTITY_PIN = "identity.pin"
    NOOP = "bench.noop"


class CA:
    """Activity names of the chaos experiment workflow."""

    DISCOVER = "chaos.discover"
    INJECT = "chaos.inject"
    REVERT = "chaos.revert"
    ROLLBACK = "chaos.rollback"
    PROBE = "chaos.probe"
    PROBE_BATCH = "chaos.probe_batch"
    REPORT = "chaos.report"


class SoakA:
    """Activity names of the soak test workflow."""

    RESOLVE = "soak.resolve_target"
    SLICE = "soak.slice"
    REPORT = "soak.report"


class LaneA:
    """Activity names of release lanes."""

    REQUEST = "lane.request"
    WATCH = "lane.watch_holder"


class NotifyA:
    """Activity names of notifications."""

    DELIVER = "notify.deliver"


class ReadyA:
    """Activity names of readiness certificates."""

    LEDGER = "readiness.ledger"
    ARTIFACTS = "readiness.artifacts"
    TEMPORAL = "readiness.temporal"
    OBSERVABILITY = "readiness.observability"
    PREVIOUS = "readiness.previous"
    PUBLISH = "readiness.publish"
