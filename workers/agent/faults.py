"""Router fault injection (chaos experiments).

A :class:`Fault` applies to requests whose path starts with ``route_prefix``
and (optionally) to one version only. With probability ``fraction``:
``latency`` delays the request by ``latency_ms`` then forwards it; ``error``
answers ``status`` (default 500) without forwarding; ``drop`` answers
``status`` (default 503), a dropped dependency. Adding a fault with an
``idempotency_key`` already used returns the existing fault; removing an
unknown id is a no-op (idempotent revert). The agent keeps the desired fault set
(persisted with its state) and pushes it to the router process, which applies it
and counts ``hits``."""

from __future__ import annotations

import random
import time
import uuid
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class FaultSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["latency", "error", "drop"]
    fraction: float = Field(1.0, ge=0, le=1)
    latency_ms: float = Field(0, ge=0, le=600_000)
    status: int | None = Field(None, ge=400, le=599)
    route_prefix: str = Field("/", pattern=r"^/")
    version: str | None = None
    idempotency_key: str | None = None

    @model_validator(mode="after")
    def _shape(self) -> FaultSpec:
        if self.kind == "latency" and self.latency_ms <= 0:
            raise ValueError("a latency fault needs latency_ms > 0")
        if self.status is None and self.kind != "latency":
            self.status = 503 if self.kind == "drop" else 500
        return self


class Fault(FaultSpec):
    id: str = Field(default_factory=lambda: uuid.uuid4().hex[:12])
    created_at: float = Field(default_factory=time.time)
    hits: int = 0


class FaultSet:
    def __init__(self) -> None:
        self._faults: dict[str, Fault] = {}
        self._rng = random.Random()  # noqa: S311 - sampling requests, not crypto

    def add(self, spec: FaultSpec) -> tuple[Fault, bool]:
        if spec.idempotency_key:
            for f in self._faults.values():
                if f.idempotency_key == spec.idempotency_key:
                    return f, False
        fault = Fault(**spec.model_dump())
        self._faults[fault.id] = fault
        return fault, True

    def replace(self, faults: list[Fault]) -> None:
        """Take this list as the fault set (a router's config push), keeping hit counts."""
        old, self._faults = self._faults, {}
        for f in faults:
            if f.id in old:
                f.hits = max(f.hits, old[f.id].hits)
            self._faults[f.id] = f

    def remove(self, fault_id: str) -> bool:
        return self._faults.pop(fault_id, None) is not None

    def list(self) -> list[Fault]:
        return list(self._faults.values())

    def __bool__(self) -> bool:
        return bool(self._faults)

    def decide(self, path: str, version: str | None) -> tuple[float, int | None]:
        """(delay seconds, status to answer instead of forwarding or None)."""
        delay = 0.0
        for f in self._faults.values():
            if not path.startswith(f.route_prefix):
                continue
            if f.version is not None and f.version != version:
                continue
            if f.fraction < 1.0 and self._rng.random() >= f.fraction:
                continue
            f.hits += 1
            if f.kind == "latency":
                delay += f.latency_ms / 1000.0
            else:
                return delay, f.status
        return delay, None
