"""The fault catalogue: every fault CODE can inject, what it acts on, the
parameters it takes and how it is reverted.

Every fault has an explicit, idempotent revert (run by the workflow's
rollbacks, whatever happened before):

| kind | platform | unit | inject | revert |
|---|---|---|---|---|
| ``kill_instance`` | local | instance | SIGKILL the instance | restore the version (restart dead instances) |
| ``pause_instance`` | local | instance | SIGSTOP the instance | restore the version (SIGCONT) |
| ``latency`` | local | route | router adds latency to a fraction of requests | delete the router fault |
| ``error`` | local | route | router answers ``status`` for a fraction | delete the router fault |
| ``drop_dependency`` | local | route | router answers 503 for ``route_prefix`` | delete the router fault |
| ``cpu_burn`` | local | host | a burner process spins ``cores`` cores | kill the burner (it also exits by itself after ``max_duration_s``) |
| ``memory_pressure`` | local | host | a process holds ``mb`` MiB | kill it (self-exits after ``max_duration_s``) |
| ``delete_pod`` | kubernetes | instance | delete the pod | wait until the Deployment is available again |
| ``scale_down`` | kubernetes | route | scale the Deployment to ``replicas`` | scale back to the recorded replica count |
| ``network_partition`` | kubernetes | route | a deny-all NetworkPolicy for the pods (``direction``: ingress, egress, both) | delete the policy |

Chaos Toolkit experiments call these as python providers with
``module: code.faults`` and ``func: <kind>``; rollbacks may call
``code.faults.restore`` (restore a version) and ``code.faults.remove_faults``
(remove every router fault of a service/environment; on kubernetes, every
``code-chaos`` NetworkPolicy of the service in the namespace)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Unit = Literal["instance", "route", "host"]
Platform = Literal["local", "kubernetes"]

CTK_MODULE = "code.faults"


@dataclass(frozen=True)
class FaultKind:
    name: str
    platform: Platform
    unit: Unit
    summary: str
    params: dict[str, type | tuple[type, ...]] = field(default_factory=dict)
    required: tuple[str, ...] = ()


CATALOGUE: dict[str, FaultKind] = {
    f.name: f
    for f in (
        FaultKind("kill_instance", "local", "instance", "SIGKILL an instance"),
        FaultKind("pause_instance", "local", "instance", "SIGSTOP an instance (SIGCONT on revert)"),
        FaultKind(
            "latency",
            "local",
            "route",
            "router adds latency to a fraction of requests",
            {"latency_ms": (int, float), "fraction": (int, float), "route_prefix": str},
            ("latency_ms",),
        ),
        FaultKind(
            "error",
            "local",
            "route",
            "router answers an error status for a fraction of requests",
            {"status": int, "fraction": (int, float), "route_prefix": str},
        ),
        FaultKind(
            "drop_dependency",
            "local",
            "route",
            "router answers 503 for a route prefix (a dropped dependency)",
            {"route_prefix": str, "fraction": (int, float)},
            ("route_prefix",),
        ),
        FaultKind(
            "cpu_burn",
            "local",
            "host",
            "burn CPU on the host running the service",
            {"cores": int, "max_duration_s": (int, float)},
        ),
        FaultKind(
            "memory_pressure",
            "local",
            "host",
            "hold memory on the host running the service",
            {"mb": int, "max_duration_s": (int, float)},
            ("mb",),
        ),
        FaultKind("delete_pod", "kubernetes", "instance", "delete a pod of the Deployment"),
        FaultKind(
            "scale_down",
            "kubernetes",
            "route",
            "scale the Deployment down",
            {"replicas": int},
        ),
        FaultKind(
            "network_partition",
            "kubernetes",
            "route",
            "deny the pods' ingress and/or egress with a NetworkPolicy",
            {"direction": str},
        ),
    )
}

NETWORK_DIRECTIONS = ("ingress", "egress", "both")

# rollback-only helpers callable from Chaos Toolkit rollbacks
ROLLBACK_ACTIONS = {
    "restore": "restore a service version: restart dead instances, SIGCONT stopped ones",
    "remove_faults": "remove every router fault (kubernetes: chaos NetworkPolicy) of a "
    "service/environment",
}

# keys a catalogue function accepts as its target selector (not fault params)
SELECTOR_KEYS = ("service", "environment", "version", "labels", "mode", "platform")


def check_params(kind: str, params: dict[str, object]) -> list[str]:
    """Problems with ``params`` for fault ``kind`` (empty when fine)."""
    fk = CATALOGUE.get(kind)
    if fk is None:
        return [f"unknown fault kind {kind!r} (known: {', '.join(sorted(CATALOGUE))})"]
    problems = []
    for name, value in params.items():
        expected = fk.params.get(name)
        if expected is None:
            allowed = ", ".join(sorted(fk.params)) or "none"
            problems.append(f"fault {kind!r} takes no parameter {name!r} (allowed: {allowed})")
        elif isinstance(value, bool) or not isinstance(value, expected):
            problems.append(f"fault {kind!r} parameter {name!r} has the wrong type ({value!r})")
    for name in fk.required:
        if name not in params:
            problems.append(f"fault {kind!r} needs parameter {name!r}")
    frac = params.get("fraction")
    if isinstance(frac, int | float) and not 0 < frac <= 1:
        problems.append(f"fault {kind!r} fraction must be in (0, 1], got {frac}")
    cores = params.get("cores")
    if isinstance(cores, int) and not 1 <= cores <= 64:
        problems.append(f"fault {kind!r} cores must be 1..64, got {cores}")
    mb = params.get("mb")
    if isinstance(mb, int) and not 1 <= mb <= 65536:
        problems.append(f"fault {kind!r} mb must be 1..65536, got {mb}")
    status = params.get("status")
    if isinstance(status, int) and not 400 <= status <= 599:
        problems.append(f"fault {kind!r} status must be an HTTP error status 400..599")
    direction = params.get("direction")
    if isinstance(direction, str) and direction not in NETWORK_DIRECTIONS:
        problems.append(
            f"fault {kind!r} parameter 'direction' must be one of "
            f"{', '.join(NETWORK_DIRECTIONS)}, got {direction!r}"
        )
    return problems
