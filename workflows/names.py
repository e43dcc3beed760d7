"""Task queues, activity names and search-attribute keys shared by workflows,
activities, workers and clients. Workflows refer to activities by these names
only, so workflow code never imports I/O modules."""

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


class A:
    """Activity names (``@activity.defn(name=A.X)`` on the implementation)."""

    VALIDATE_SPEC = "validate.spec"
    PLATFORM_APPLY = "platform.apply_version"
    PLATFORM_TRAFFIC = "platform.set_traffic"
    PLATFORM_RETIRE = "platform.retire_version"
    PLATFORM_DESCRIBE = "platform.describe"
    ANALYSE = "analysis.run"
    LEDGER_RECORD = "ledger.record"
    LEDGER_LAST_GOOD = "ledger.last_known_good"
    NOOP = "bench.noop"
