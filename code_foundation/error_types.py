"""The ``type`` names of the Temporal failures CODE raises, and the one list of
non-retryable types every ``RetryPolicy`` takes.

An error class's name is its failure type (see :mod:`code_foundation.errors`); a
test checks that every ``CodeError`` subclass in the project is listed here and
that ``NON_RETRYABLE`` holds exactly the classes that are not ``retryable``."""

from __future__ import annotations

# spec and configuration
SPEC_ERROR = "SpecError"
CONFIG_ERROR = "ConfigError"
TARGET_REFUSED = "TargetRefused"
NOT_LOOPBACK = "NotLoopbackError"
NON_LOOPBACK_PROBE = "NonLoopbackProbe"
UNKNOWN_TARGET = "UnknownTarget"
PROTECTED_TARGET = "ProtectedTarget"
NO_TARGETS = "NoTargets"
UNSUPPORTED_ROLLBACK = "UnsupportedRollback"
# servers
SERVER_UNAVAILABLE = "ServerUnavailable"
# platforms
PLATFORM_ERROR = "PlatformError"
PLATFORM_UNAVAILABLE = "PlatformUnavailable"
PLATFORM_CONFLICT = "PlatformConflict"
UNHEALTHY_VERSION = "UnhealthyVersion"
SECRET_RESOLUTION_FAILED = "SecretResolutionFailed"
MANIFEST_REJECTED = "ManifestRejected"
OBJECT_NOT_FOUND = "ObjectNotFound"
POLICY_VIOLATION = "PolicyViolation"
# secrets
SECRET_ERROR = "SecretError"
SECRET_REFERENCE_INVALID = "SecretReferenceInvalid"
SECRET_NOT_FOUND = "SecretNotFound"
SECRET_PERMISSION_DENIED = "SecretPermissionDenied"
SECRET_STORE_SEALED = "SecretStoreSealed"
SECRET_STORE_UNAVAILABLE = "SecretStoreUnavailable"
# metrics
METRICS_ERROR = "MetricsError"
METRICS_UNAVAILABLE = "MetricsUnavailable"
NO_DATA = "NoData"
METRIC_MISMATCH = "MetricMismatch"
BAD_QUERY = "BadQuery"
BUDGET_UNAVAILABLE = "BudgetUnavailable"
# artifacts and ledger
ARTIFACT_ERROR = "ArtifactError"
ARTIFACT_NOT_FOUND = "ArtifactNotFound"
ARTIFACT_CORRUPTED = "ArtifactCorrupted"
ARTIFACT_ACCESS_DENIED = "ArtifactAccessDenied"
ARTIFACT_STORE_UNAVAILABLE = "ArtifactStoreUnavailable"
LEDGER_UNAVAILABLE = "LedgerUnavailable"
# workflow outcomes (raised by workflows, never retried by the server)
DEPLOYMENT_FAILED = "DeploymentFailed"
DEPLOYMENT_NOT_PROMOTED = "DeploymentNotPromoted"
"""A deployment ended rolled back, failed or aborted: its ``DeployResult`` is ``details[0]``."""
ERROR_BUDGET_EXHAUSTED = "ErrorBudgetExhausted"
RELEASE_NOT_PROMOTED = "ReleaseNotPromoted"
"""A release ended rolled back, failed, aborted or halted: its ``ReleaseResult`` is ``details[0]``."""
APPROVAL_TIMEOUT = "ApprovalTimeout"
ROLLBACK_FAILED = "RollbackFailed"
ROLLBACK_IMPOSSIBLE = "RollbackImpossible"
LANE_BUSY = "LaneBusy"
"""``concurrency: reject`` and the lane was held: nothing was applied."""
IDENTITY_DENIED = "IdentityDenied"
"""The caller's token or role was refused (audited); nothing changed."""
HOOK_FAILED = "HookFailed"
"""A ``pre_rollout``/``rollout`` check hook failed after its retries (the run compensates)."""
HOOK_GATE_TIMED_OUT = "HookGateTimedOut"
"""A ``confirm_*`` gate hook did not pass before its deadline (``on_timeout: fail``)."""
LOGIN_FAILED = "LoginFailed"
"""``codectl login``'s device flow ended without a token (denied, expired, refused)."""

RETRYABLE: tuple[str, ...] = (
    SERVER_UNAVAILABLE,
    PLATFORM_UNAVAILABLE,
    SECRET_STORE_UNAVAILABLE,
    METRICS_UNAVAILABLE,
    ARTIFACT_STORE_UNAVAILABLE,
    LEDGER_UNAVAILABLE,
    BUDGET_UNAVAILABLE,
)
"""Types that may succeed when tried again (timeouts, 5xx, connection refused)."""

NON_RETRYABLE: tuple[str, ...] = (
    SPEC_ERROR,
    CONFIG_ERROR,
    TARGET_REFUSED,
    NOT_LOOPBACK,
    NON_LOOPBACK_PROBE,
    UNKNOWN_TARGET,
    PROTECTED_TARGET,
    UNSUPPORTED_ROLLBACK,
    PLATFORM_ERROR,
    PLATFORM_CONFLICT,
    UNHEALTHY_VERSION,
    SECRET_RESOLUTION_FAILED,
    MANIFEST_REJECTED,
    OBJECT_NOT_FOUND,
    POLICY_VIOLATION,
    SECRET_ERROR,
    SECRET_REFERENCE_INVALID,
    SECRET_NOT_FOUND,
    SECRET_PERMISSION_DENIED,
    SECRET_STORE_SEALED,
    METRICS_ERROR,
    NO_DATA,
    METRIC_MISMATCH,
    BAD_QUERY,
    ARTIFACT_ERROR,
    ARTIFACT_NOT_FOUND,
    ARTIFACT_CORRUPTED,
    ARTIFACT_ACCESS_DENIED,
    LOGIN_FAILED,
)
"""Types no retry can fix: every activity ``RetryPolicy`` lists these."""
