"""Faults on the local platform (the agent) and on the local host.

* instance faults: ``kill_instance`` (SIGKILL) and ``pause_instance``
  (SIGSTOP) through the agent; revert = ``restore`` of the version (restarts
  dead instances, SIGCONTs stopped ones, waits healthy; idempotent).
* route faults: ``latency`` / ``error`` / ``drop_dependency`` are router faults
  added with the idempotency key; revert removes the fault by id, or, when the
  inject outcome is unknown (the activity died after the agent acted), every
  fault carrying that idempotency key.
* host faults: ``cpu_burn`` / ``memory_pressure`` start a burner process
  (:mod:`activities.faults.burner`) recorded in ``<state_dir>/chaos/burners``;
  revert kills it (verified by pid, create time and the key on its command
  line). The burner also exits by itself after ``max_duration_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import psutil

from activities.faults import NothingToRevert
from activities.platform.local import LocalPlatform
from chaos.blast import Target

_ROUTER_KIND = {"latency": "latency", "error": "error", "drop_dependency": "drop"}


class LocalFaults:
    def __init__(self, agent_url: str, state_dir: Path) -> None:
        self.platform = LocalPlatform(agent_url)
        self.burner_dir = state_dir / "chaos" / "burners"

    # ------------------------------------------------------------ discovery
    async def candidates(self, service: str, env: str) -> list[Target]:
        data = await self.platform.describe_raw(service, env)
        if data is None:
            return []
        out = []
        for version, v in sorted(data.get("versions", {}).items()):
            for inst in v.get("instances", []):
                out.append(
                    Target(
                        platform="local",
                        unit="instance",
                        service=service,
                        environment=env,
                        version=version,
                        index=int(inst["index"]),
                        labels={"version": version, "index": str(inst["index"])},
                    )
                )
        return out

    # ------------------------------------------------------------ inject
    async def inject(
        self, key: str, fault: str, target: Target, params: dict[str, Any]
    ) -> dict[str, Any]:
        if fault in ("kill_instance", "pause_instance"):
            if target.version is None or target.index is None:
                raise ValueError(f"{target.id}: {fault} needs the version and instance to act on")
            sig = "KILL" if fault == "kill_instance" else "STOP"
            res = await self.platform.signal_instance(
                target.service,
                target.environment,
                target.version,
                target.index,
                sig,
                idempotency_key=key,
            )
            return {"signal": sig, "pid": res.get("pid") if isinstance(res, dict) else None}
        if fault in _ROUTER_KIND:
            fid = await self.platform.inject_fault(
                target.service,
                target.environment,
                _ROUTER_KIND[fault],
                fraction=float(params.get("fraction", 1.0)),
                latency_ms=float(params.get("latency_ms", 0.0)),
                status=params.get("status"),
                route_prefix=str(params.get("route_prefix", "/")),
                version=target.version,
                idempotency_key=key,
            )
            return {"fault_id": fid}
        if fault in ("cpu_burn", "memory_pressure"):
            # make sure the service exists before loading its host
            if await self.platform.describe_raw(target.service, target.environment) is None:
                from activities.platform.base import PlatformConflict

                raise PlatformConflict(
                    f"{target.service}/{target.environment} is not deployed on the local agent"
                )
            return await asyncio.to_thread(self._start_burner, key, fault, params)
        raise ValueError(f"fault {fault!r} is not a local fault")

    # ------------------------------------------------------------ revert
    async def revert(self, key: str, fault: str, target: Target, handle: dict[str, Any]) -> str:
        if fault in ("kill_instance", "pause_instance"):
            if target.version is None:
                raise ValueError(f"{target.id}: {fault} needs the version to restore")
            data = await self.platform.describe_raw(target.service, target.environment)
            if data is None:
                return NothingToRevert(
                    f"{target.service}/{target.environment} is gone; nothing to restore"
                )
            if target.version not in data.get("versions", {}):
                return NothingToRevert(
                    f"{target.service}/{target.environment} version {target.version} is no "
                    "longer deployed; nothing to restore"
                )
            res = await self.platform.restore_version(
                target.service, target.environment, target.version, idempotency_key=key + ":revert"
            )
            if not res.get("changed"):
                return NothingToRevert(f"{target.id} was already running; nothing to restore")
            return f"restored {target.id} (changed=True)"
        if fault in _ROUTER_KIND:
            return await self.remove_router_faults(target, key, handle.get("fault_id"))
        if fault in ("cpu_burn", "memory_pressure"):
            return await asyncio.to_thread(self._stop_burner, key)
        raise ValueError(f"fault {fault!r} is not a local fault")

    async def remove_router_faults(
        self, target: Target, key: str | None, fault_id: str | None
    ) -> str:
        """Remove one fault by id, the faults with idempotency key ``key``, or (both None) all."""
        if await self.platform.describe_raw(target.service, target.environment) is None:
            return NothingToRevert(
                f"{target.service}/{target.environment} is gone; no router fault left"
            )
        ids = [fault_id] if fault_id else []
        if not fault_id:
            for f in await self.platform.list_faults(target.service, target.environment):
                if key is None or f.get("idempotency_key") == key:
                    ids.append(str(f["id"]))
        removed = 0
        for fid in ids:
            removed += await self.platform.remove_fault(
                target.service, target.environment, fid, idempotency_key=None
            )
        msg = f"removed {removed} router fault(s) from {target.service}/{target.environment}"
        return msg if removed else NothingToRevert(msg)

    async def restore(self, service: str, env: str, version: str | None, key: str) -> str:
        """Restore ``version`` (every deployed version when None); a service or version
        that is not deployed, or nothing dead or stopped, is :class:`NothingToRevert`."""
        data = await self.platform.describe_raw(service, env)
        if data is None:
            return NothingToRevert(f"{service}/{env} is not deployed; nothing to restore")
        deployed = sorted(data.get("versions", {}))
        if version is not None and version not in deployed:
            return NothingToRevert(
                f"{service}/{env} version {version} is not deployed "
                f"(deployed: {', '.join(deployed) or 'none'}); nothing to restore"
            )
        versions = [version] if version else deployed
        changed = []
        for v in versions:
            res = await self.platform.restore_version(service, env, v, idempotency_key=f"{key}:{v}")
            if res.get("changed"):
                changed.append(v)
        if not changed:
            return NothingToRevert(
                f"{service}/{env} {', '.join(versions) or '(no versions)'} already running; "
                "nothing to restore"
            )
        return f"restored {service}/{env} {', '.join(changed)}"

    # ------------------------------------------------------------ burners
    def _pidfile(self, key: str) -> Path:
        return self.burner_dir / (hashlib.sha256(key.encode()).hexdigest()[:24] + ".json")

    def _live(self, info: dict[str, Any]) -> psutil.Process | None:
        try:
            p = psutil.Process(int(info["pid"]))
            if abs(p.create_time() - float(info["create_time"])) > 0.5:
                return None
            if info["tag"] not in " ".join(p.cmdline()):
                return None
            return p
        except (psutil.Error, KeyError, ValueError):
            return None

    def _start_burner(self, key: str, fault: str, params: dict[str, Any]) -> dict[str, Any]:
        pidfile = self._pidfile(key)
        if pidfile.exists():
            info = json.loads(pidfile.read_text())
            if self._live(info):
                return info  # idempotent: already burning for this key
        tag = pidfile.stem
        cmd = [
            sys.executable,
            "-m",
            "activities.faults.burner",
            "--kind",
            "cpu" if fault == "cpu_burn" else "memory",
            "--max-duration",
            str(float(params.get("max_duration_s", 300))),
            "--key",
            tag,
        ]
        if fault == "cpu_burn":
            cmd += ["--cores", str(int(params.get("cores", 1)))]
        else:
            cmd += ["--mb", str(int(params.get("mb", 64)))]
        root = Path(__file__).resolve().parents[2]
        proc = subprocess.Popen(  # fixed argv, no shell
            cmd,
            cwd=root,
            start_new_session=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        info = {
            "pid": proc.pid,
            "create_time": psutil.Process(proc.pid).create_time(),
            "tag": tag,
            "fault": fault,
        }
        self.burner_dir.mkdir(parents=True, exist_ok=True)
        tmp = pidfile.with_suffix(".tmp")
        tmp.write_text(json.dumps(info))
        os.replace(tmp, pidfile)
        return info

    def _stop_burner(self, key: str) -> str:
        pidfile = self._pidfile(key)
        if not pidfile.exists():
            return NothingToRevert("no burner recorded (already stopped)")
        info = json.loads(pidfile.read_text())
        p = self._live(info)
        if p is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGKILL)
            with contextlib.suppress(psutil.Error):
                p.wait(timeout=5)
        pidfile.unlink(missing_ok=True)
        if p is None:
            return NothingToRevert("burner had already exited")
        return f"burner pid {info['pid']} stopped"
