"""What the parts of a deployment share: the activity options, :class:`Aborted`,
the approval state, and :class:`DeploymentHost` — the typed surface of
``DeploymentWorkflow`` that the strategies, gates and compensation modules use
(they never reach into the workflow's private fields). Deterministic; no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Protocol, TypeVar

from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

from code_foundation.error_types import NON_RETRYABLE, SPEC_ERROR
from workflows.analysis import AnalysisHost
from workflows.lane_session import LaneSession
from workflows.models import ControlInput, LedgerStatus, StepKind, StepRecord
from workflows.spec import DeploymentSpec

RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=8,
    non_retryable_error_types=list(NON_RETRYABLE),
)
SHORT = timedelta(seconds=30)
APPLY_TIMEOUT = timedelta(minutes=10)
T = TypeVar("T")


def required(value: T | None, what: str) -> T:
    """``value``, which validation or the run's start guarantees is set."""
    if value is None:
        raise ApplicationError(f"{what} is not set", type=SPEC_ERROR, non_retryable=True)
    return value


class Aborted(Exception):
    """Raised inside the workflow when an abort signal arrives."""


@dataclass
class ApprovalState:
    """Approvals and error-budget overrides, written by the ``approve`` Update and
    waited on by the gates."""

    seq: int = 0
    approved_by: list[str] = field(default_factory=list)
    waiting_approval: bool = False
    override_by: str | None = None
    waiting_override: bool = False


class DeploymentHost(AnalysisHost, Protocol):
    """The running deployment, as its strategies, gates and compensation see it."""

    approvals: ApprovalState
    actor: str
    search_attributes_on: bool
    applied: bool
    previous: str | None
    lane_session: LaneSession | None

    @property
    def spec(self) -> DeploymentSpec:
        """The spec being deployed."""
        ...

    @property
    def abort_request(self) -> ControlInput | None:
        """The first ``abort`` signal, if one arrived."""
        ...

    def note(self, text: str) -> None:
        """Show ``text`` as the status's reason."""
        ...

    def activity_key(self, step: str) -> str:
        """The idempotency key of one step of this run."""
        ...

    def begin_step(self, index: int, kind: StepKind, description: str) -> StepRecord:
        """Open (and show) a step record."""
        ...

    async def hold_if_paused(self) -> None:
        """Wait while paused; raise if aborted."""
        ...

    async def traffic(self, weights: dict[str, int], step: str) -> None:
        """Set the traffic weights (``platform.set_traffic``)."""
        ...

    async def ledger(self, status: LedgerStatus, detail: str = "") -> None:
        """Record the release's status in the ledger (``ledger.record``)."""
        ...
