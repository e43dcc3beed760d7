"""Data model of the agent: a version's spec (and its hash), a running version,
a service with its router process, weights and faults, and :class:`AgentError`
(HTTP status, error code, actionable detail).

Secrets: ``VersionSpec.secret_env`` holds resolved secret values for the process
environment only. It is never persisted, returned or hashed (``secret_versions``
are hashed, so a rotation restarts). ``Version.secret_names`` (names only) is
persisted, so a restarted agent knows which instances it cannot restart by
itself: those are reported ``needs_reapply`` until an apply re-sends the values."""

from __future__ import annotations

import asyncio
import hashlib
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from workers.agent.faults import FaultSet

if TYPE_CHECKING:
    from workers.agent.instances import Instance
    from workers.agent.routers import RouterProc


class AgentError(Exception):
    def __init__(self, status: int, error: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.error, self.detail = status, error, detail


@dataclass
class VersionSpec:
    command: list[str]
    workdir: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    replicas: int = 1
    health_path: str = "/healthz"
    health_timeout_s: float = 30.0
    # resolved secrets: given to the process environment only; never persisted,
    # returned or hashed (their versions are hashed, so a rotation restarts)
    secret_env: dict[str, str] = field(default_factory=dict, repr=False)
    secret_versions: dict[str, str] = field(default_factory=dict)

    def public(self) -> dict[str, object]:
        return {k: v for k, v in self.__dict__.items() if k != "secret_env"}

    def hash(self) -> str:
        ident = {k: v for k, v in self.public().items() if k != "health_timeout_s"}
        return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:16]

    @classmethod
    def from_public(cls, data: dict[str, Any]) -> VersionSpec:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        known.pop("secret_env", None)
        return cls(**known)


@dataclass
class Version:
    name: str
    spec: VersionSpec
    spec_hash: str
    instances: list[Instance]
    secret_names: list[str] = field(default_factory=list)

    @property
    def secrets_missing(self) -> bool:
        """Secrets are referenced but their values are not in memory (agent restarted)."""
        return bool(self.secret_names) and not self.spec.secret_env

    def status(self) -> str:
        healthy = sum(1 for i in self.instances if i.healthy and i.alive)
        if healthy == len(self.instances):
            return "running"
        if any(i.needs_reapply for i in self.instances):
            return "needs_reapply"
        return "degraded" if healthy else "down"


@dataclass
class Service:
    service: str
    environment: str
    router: RouterProc
    weights: dict[str, int] = field(default_factory=dict)
    versions: dict[str, Version] = field(default_factory=dict)
    faults: FaultSet = field(default_factory=FaultSet)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    generation: int = 0

    @property
    def key(self) -> str:
        return f"{self.service}/{self.environment}"

    def describe(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "environment": self.environment,
            "endpoint": self.router.endpoint,
            "router": {"pid": self.router.pid, "alive": self.router.alive},
            "weights": dict(self.weights),
            "versions": {
                name: {
                    "status": v.status(),
                    "spec_hash": v.spec_hash,
                    "instances": [i.describe() for i in v.instances],
                }
                for name, v in self.versions.items()
            },
        }

    def router_config(self) -> dict[str, Any]:
        """What the router process serves: no specs, no env, no secrets."""
        return {
            "service": self.service,
            "environment": self.environment,
            "generation": self.generation,
            "weights": dict(self.weights),
            "versions": {
                name: {
                    "health_path": v.spec.health_path,
                    "instances": [
                        {"index": i.index, "port": i.port, "pid": i.pid, "healthy": i.healthy}
                        for i in v.instances
                    ],
                }
                for name, v in self.versions.items()
            },
            "faults": [f.model_dump() for f in self.faults.list()],
        }

    def to_state(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "environment": self.environment,
            "endpoint": self.router.endpoint,
            "router": self.router.to_state(),
            "weights": dict(self.weights),
            "faults": [f.model_dump() for f in self.faults.list()],
            "versions": {
                name: {
                    "spec": v.spec.public(),
                    "spec_hash": v.spec_hash,
                    "secret_names": sorted(v.secret_names),
                    "instances": [i.to_state() for i in v.instances],
                }
                for name, v in self.versions.items()
            },
        }
