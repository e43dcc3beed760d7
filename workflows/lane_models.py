"""Public models of release lanes: one lane per (service, environment, platform target)
serialises every workflow that changes that target (deployments, manual rollbacks,
releases). Pure pydantic; used by the lane workflow, the requesters, the lane
activities and the CLI."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

LanePolicy = Literal["queue", "supersede", "reject"]
HolderKind = Literal["deployment", "rollback", "release", "other"]
GRANT_SIGNAL = "lane_reply"
ACQUIRE_SIGNAL = "acquire"
RELEASE_SIGNAL = "release"


class _M(BaseModel):
    model_config = ConfigDict(extra="forbid")


def lane_target(platform: str, namespace: str | None = None) -> str:
    """The platform target a lane covers: the platform, and the namespace when one is set."""
    return platform + (f".{namespace}" if namespace else "")


def lane_id(service: str, environment: str, target: str = "local") -> str:
    """The lane workflow id of one service/environment/platform target."""
    parts = [service, environment, target or "local"]
    return "lane-" + "-".join(re.sub(r"[^A-Za-z0-9_.-]+", "_", p) for p in parts)


class LaneRequest(_M):
    """A workflow asking for the lane. ``holder_id``/``holder_run_id`` name the requester."""

    lane: str
    holder_id: str
    holder_run_id: str
    kind: HolderKind = "other"
    policy: LanePolicy = "queue"
    description: str = ""
    requested_at: datetime | None = None
    token: str | None = Field(
        None, repr=False, description="the requester's verified token (sent with a supersede)"
    )


class LaneReply(_M):
    """What the lane tells a requester: ``queued`` (with who is ahead), ``granted`` or
    ``rejected`` (with the holder it was refused for)."""

    lane: str
    state: Literal["queued", "granted", "rejected"]
    holder: str | None = Field(None, description="the workflow holding the lane, if any")
    position: int = Field(0, description="1 = next in line; 0 when granted or rejected")
    reason: str = ""


class LaneRelease(_M):
    holder_id: str
    holder_run_id: str
    outcome: str = ""


class LaneEvent(_M):
    at: datetime
    what: str


class LaneState(_M):
    """The lane's state (its ``state`` Query, and what continue-as-new carries over)."""

    lane: str
    holder: LaneRequest | None = None
    queue: list[LaneRequest] = Field(default_factory=list)
    granted_total: int = 0
    recent: list[LaneEvent] = Field(default_factory=list, description="the last 20 events")


class LaneInput(_M):
    lane: str
    state: LaneState | None = None
    idle_timeout_s: float = Field(
        0.0, ge=0, description="stay open this long with nothing to do (0: end at once)"
    )
    max_grants_per_run: int = Field(100, gt=0, description="continue-as-new after this many")


class LaneRequestInput(_M):
    """Input of the ``lane.request`` activity (signal-with-start of the lane)."""

    request: LaneRequest
    task_queue: str
    service: str = ""
    environment: str = ""
    search_attributes: bool = Field(True, description="set CodeKind/CodeService on the lane")


class LaneWatchInput(_M):
    holder_id: str
    holder_run_id: str


class LaneWatchResult(_M):
    holder_id: str
    holder_run_id: str
    status: str
