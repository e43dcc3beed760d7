"""Data model of the agent: a version's spec (and its hash), a running version,
a service with its router and weights, and :class:`AgentError` (HTTP status,
error code, actionable detail)."""

from __future__ import annotations

import asyncio
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from workers.agent import instances as im
from workers.agent.router import Router


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


@dataclass
class Version:
    name: str
    spec: VersionSpec
    spec_hash: str
    instances: list[im.Instance]

    def status(self) -> str:
        healthy = sum(1 for i in self.instances if i.healthy and i.alive)
        if healthy == len(self.instances):
            return "running"
        return "degraded" if healthy else "down"


@dataclass
class Service:
    service: str
    environment: str
    router: Router
    weights: dict[str, int] = field(default_factory=dict)
    versions: dict[str, Version] = field(default_factory=dict)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def describe(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "environment": self.environment,
            "endpoint": self.router.endpoint,
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
